package main

// Kubernetes' apiserver keeps its objects through k8s.io/apiserver's etcd3
// storage (storage.Interface over etcd's client). k8s.io/apiserver exports
// the conformance tests that storage.Interface implementations run
// (k8s.io/apiserver/pkg/storage/testing); this file builds the etcd3 store
// exactly as k8s's own pkg/storage/etcd3/store_test.go (testSetup) does —
// example.Pod, the test codec, a prefix transformer, a compactor, the KV
// and Kubernetes call recorders — and runs those tests against real
// members: tools/bin/etcd (proof that the wiring is right), and quorumd
// with 1 and with 3 members.
//
// Run one target or one test:
//
//	go test ./cmd/quorumd -run 'TestKubernetesStorage/etcd'
//	go test ./cmd/quorumd -run 'TestKubernetesStorage/quorumd-3/Watch$'
//
// Every test of k8s's store_test.go and watcher_test.go that calls one of
// the exported RunTest* functions is run, with the same arguments, except:
//   - WatchWithUnsafeDelete: its corrupting transformer must return
//     etcd3's unexported corruptObjectError for the store to delete the
//     object, which only code inside package etcd3 can build.
//
// and k8s's implementation-specific tests (TestPrefix, TestLeaseMaxObjectCount,
// TestWatchErrorIncorrectConfiguration, TestWatchChanSync, ...), which read
// the store's unexported fields and call no exported conformance test, are
// not ported.
//
// Where k8s starts one embedded etcd per test, one cluster serves a
// target's tests here, one after another, each on its own key prefix
// (etcd3.New's prefix argument) with its own client and store, so that a
// test sees only its own objects. Compaction and the increaseRV key are
// cluster-wide, as they are for an apiserver sharing etcd between
// resources.

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.uber.org/zap"

	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/etcd3"
	"k8s.io/apiserver/pkg/storage/feature"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	"k8s.io/apiserver/pkg/storage/value"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/component-base/featuregate"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
	"k8s.io/utils/clock"
)

// k8sTestPrefix is what k8s's tests' prefix transformer puts before every
// stored value (defaultTestPrefix in etcd3/store_test.go).
const k8sTestPrefix = "test!"

// k8sMaxLimit is etcd3's maxLimit: the largest page the store asks for
// when it grows its list pages.
const k8sMaxLimit = 10000

// k8sCaseTimeout bounds each conformance test, so that a watch that never
// delivers fails the test instead of hanging the run.
const k8sCaseTimeout = 45 * time.Second

func TestKubernetesStorage(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts real etcd and quorumd processes (skipped with -short)")
	}
	t.Run("etcd", func(t *testing.T) {
		bin, _ := filepath.Abs("../../tools/bin/etcd")
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("no %s: run tools/build.sh", bin)
		}
		eps, _ := startCluster(t, bin, 1, oneMemberArgs)
		runKubernetesStorageTests(t, eps)
	})
	t.Run("quorumd-1", func(t *testing.T) {
		eps, _ := startCluster(t, quorumdBinary, 1, oneMemberArgs)
		runKubernetesStorageTests(t, eps)
	})
	t.Run("quorumd-3", func(t *testing.T) {
		// The client is given all three members, as an apiserver's
		// --etcd-servers is, so requests reach followers as well.
		eps, _ := startThree(t, func(dir string, i, base int) []string { return kubeadmPlainMemberArgs(dir, i, 3, base) })
		runKubernetesStorageTests(t, eps)
	})
}

// oneMemberArgs is kubeadm's command line for a 1-member cluster, with
// progress notifications every second (not 5) as k8s's TestProgressNotify
// and TestWatchDispatchBookmarkEvents configure their etcd.
func oneMemberArgs(dir string, i, base int) []string {
	args := kubeadmPlainMemberArgs(dir, i, 1, base)
	for j, a := range args {
		if strings.HasPrefix(a, "--experimental-watch-progress-notify-interval=") {
			args[j] = "--watch-progress-notify-interval=1s" // etcd refuses both
		}
	}
	return args
}

// k8sStore is one conformance test's view of the cluster: an etcd3 store
// on its own key prefix and what k8s's tests reach behind it.
type k8sStore struct {
	storage.Interface
	client      *kubernetes.Client
	codec       runtime.Codec
	transformer *swappableTransformer
	// etcdPrefix is the etcd key every storage key is put under; ends in "/".
	etcdPrefix string
}

var _ storagetesting.InterfaceWithPrefixTransformer = (*k8sStore)(nil)

// UpdatePrefixTransformer lets the test swap the store's transformer (for
// reads and writes and for its watcher alike), as k8s's
// storeWithPrefixTransformer does; the returned func restores it.
func (s *k8sStore) UpdatePrefixTransformer(modifier storagetesting.PrefixTransformerModifier) func() {
	copied := *s.transformer.orig
	s.transformer.set(modifier(&copied))
	return func() { s.transformer.set(s.transformer.orig) }
}

// swappableTransformer is the value.Transformer the store is built with:
// it forwards to the current one, which a test may swap while the store's
// watchers run.
type swappableTransformer struct {
	orig *storagetesting.PrefixTransformer

	mu  sync.Mutex
	cur value.Transformer
}

func (s *swappableTransformer) set(tr value.Transformer) {
	s.mu.Lock()
	s.cur = tr
	s.mu.Unlock()
}

func (s *swappableTransformer) get() value.Transformer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *swappableTransformer) TransformFromStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, bool, error) {
	return s.get().TransformFromStorage(ctx, data, dataCtx)
}

func (s *swappableTransformer) TransformToStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, error) {
	return s.get().TransformToStorage(ctx, data, dataCtx)
}

// k8sCodec returns the codec of k8s's etcd3 tests: example.Pod encoded
// as example.apiserver.k8s.io/v1.
func k8sCodec() runtime.Codec {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(scheme))
	utilruntime.Must(examplev1.AddToScheme(scheme))
	return apitesting.TestCodec(serializer.NewCodecFactory(scheme), examplev1.SchemeGroupVersion)
}

// newK8sStore builds the store k8s's testSetup builds, on endpoints and
// under the key prefix "/"+prefix+"/", and closes it at the end of t.
func newK8sStore(t *testing.T, endpoints []string, prefix string) *k8sStore {
	t.Helper()
	// k8s.io/apiserver v0.36.6's feature support checker (run by
	// etcd3.New) checks each endpoint of a client once per process, in one
	// goroutine per endpoint that all share one wait.Backoff: a data race
	// as soon as a client has two endpoints (its bug, not quorumd's). So
	// each endpoint is checked first through a client of its own.
	for _, ep := range endpoints {
		one, err := kubernetes.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { one.Close() })
		feature.DefaultFeatureSupportChecker.CheckClient(one.Ctx(), one, storage.RequestWatchProgress)
	}
	client, err := kubernetes.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	client.KV = storagetesting.NewKVRecorder(client.KV)
	client.Kubernetes = storagetesting.NewKubernetesRecorder(client.Kubernetes)

	orig := storagetesting.NewPrefixTransformer([]byte(k8sTestPrefix), false)
	tr := &swappableTransformer{orig: orig, cur: orig}
	codec := k8sCodec()
	versioner := storage.APIObjectVersioner{}
	compactor := etcd3.NewCompactor(client.Client, 0, clock.RealClock{}, nil)
	t.Cleanup(compactor.Stop)
	leaseConfig := etcd3.NewDefaultLeaseManagerConfig()
	leaseConfig.ReuseDurationSeconds = 1 // as k8s's tests: wait no longer than a test can
	st, err := etcd3.New(client, compactor, codec,
		func() runtime.Object { return &example.Pod{} },
		func() runtime.Object { return &example.PodList{} },
		prefix, "/pods/", schema.GroupResource{Resource: "pods"},
		tr, leaseConfig, etcd3.NewDefaultDecoder(codec, versioner), versioner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &k8sStore{Interface: st, client: client, codec: codec, transformer: tr, etcdPrefix: path.Join("/", prefix) + "/"}
}

// etcdKey is the etcd key under which the store keeps storage key key.
func (s *k8sStore) etcdKey(key string) string { return s.etcdPrefix + strings.TrimPrefix(key, "/") }

// checkStorageInvariants is k8s's: the stored value of key decodes, behind
// the transformer's prefix, to a pod without resource version or self link.
func (s *k8sStore) checkStorageInvariants() storagetesting.KeyValidation {
	return func(ctx context.Context, t *testing.T, key string) {
		resp, err := s.client.KV.Get(ctx, s.etcdKey(key))
		if err != nil {
			t.Fatalf("etcdClient.KV.Get failed: %v", err)
		}
		if len(resp.Kvs) == 0 {
			t.Fatalf("expecting non empty result on key: %s", key)
		}
		decoded, err := runtime.Decode(s.codec, resp.Kvs[0].Value[len(k8sTestPrefix):])
		if err != nil {
			t.Fatalf("expecting successful decode of object from %v\n%v", err, string(resp.Kvs[0].Value))
		}
		obj := decoded.(*example.Pod)
		if obj.ResourceVersion != "" {
			t.Errorf("stored object should have empty resource version")
		}
		if obj.SelfLink != "" {
			t.Errorf("stored output should have empty selfLink")
		}
	}
}

// checkStorageCallsInvariants is k8s's: a paged list reads as many objects
// and makes as many etcd reads as the store's page growth predicts.
func (s *k8sStore) checkStorageCallsInvariants() storagetesting.CallsValidation {
	recorder := s.client.KV.(*storagetesting.KVRecorder)
	return func(t *testing.T, pageSize, estimatedProcessedObjects uint64) {
		if reads := s.transformer.orig.GetReadsAndReset(); reads != estimatedProcessedObjects {
			t.Errorf("unexpected reads: %d, expected: %d", reads, estimatedProcessedObjects)
		}
		estimatedGetCalls := uint64(1)
		if pageSize != 0 {
			currLimit := pageSize
			for sum := uint64(1); sum < estimatedProcessedObjects; {
				currLimit *= 2
				if currLimit > k8sMaxLimit {
					currLimit = k8sMaxLimit
				}
				sum += currLimit
				estimatedGetCalls++
			}
		}
		if reads := recorder.GetReadsAndReset(); reads != estimatedGetCalls {
			t.Fatalf("unexpected reads: %d, want: %d", reads, estimatedGetCalls)
		}
	}
}

// compaction is k8s's compactStorage: compact the cluster at the resource
// version, and with ListFromCacheSnapshot wait (until ctx ends) for the
// store's compactor to observe it.
func (s *k8sStore) compaction() storagetesting.Compaction {
	return func(ctx context.Context, t *testing.T, resourceVersion string) {
		rv, err := storage.APIObjectVersioner{}.ParseResourceVersion(resourceVersion)
		if err != nil {
			t.Fatal(err)
		}
		// Compact writes compact_rev_key if its version is the one
		// expected, else returns its version and value. k8s's tests expect
		// version 0 (a fresh etcd); here earlier tests have compacted, so
		// the first try learns the version and the second compacts.
		var version int64
		for try := 0; ; try++ {
			next, _, compacted, err := etcd3.Compact(ctx, s.client.Client, version, int64(rv))
			if err != nil {
				t.Fatalf("compact at %d: %v", rv, err)
			}
			if compacted == int64(rv) {
				break
			}
			if try == 2 {
				t.Fatalf("compact at %d: compact_rev_key keeps changing (version %d, value %d)", rv, next, compacted)
			}
			version = next
		}
		if !utilfeature.DefaultFeatureGate.Enabled(features.ListFromCacheSnapshot) {
			return
		}
		for s.CompactRevision() != int64(rv) {
			select {
			case <-ctx.Done():
				t.Fatalf("compactor did not observe compaction at %d (it has %d): %v", rv, s.CompactRevision(), ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// increaseRV is k8s's increaseRVFunc: one write outside the store's keys.
func (s *k8sStore) increaseRV() storagetesting.IncreaseRVFunc {
	return func(ctx context.Context, t *testing.T) int64 {
		resp, err := s.client.KV.Put(ctx, "increaseRV", "ok")
		if err != nil {
			t.Fatalf("Could not update increaseRV: %v", err)
		}
		return resp.Header.Revision
	}
}

// keys lists the etcd keys of the store's pods, as etcd3's own getKeys
// does for EnableResourceSizeEstimation.
func (s *k8sStore) keys(ctx context.Context) ([]string, error) {
	resp, err := s.client.KV.Get(ctx, s.etcdKey("/pods/"), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	return keys, nil
}

// k8sCase is one of k8s's etcd3 tests: the feature gates it sets before
// the store is built, whether it compacts the cluster, and the
// conformance test it runs.
type k8sCase struct {
	name  string
	gates map[featuregate.Feature]bool
	// compacts: the test compacts the cluster, which removes the history
	// that others read (EtcdWatchSemantics watches from resource version
	// 1), so compacting tests run after all the others.
	compacts bool
	run      func(ctx context.Context, t *testing.T, s *k8sStore)
}

// k8sCases are the tests of k8s.io/apiserver's pkg/storage/etcd3
// store_test.go and watcher_test.go (v0.36.6) that run an exported
// conformance test, under their names there less "Test", with the same
// arguments.
var k8sCases = []k8sCase{
	// store_test.go
	{name: "Create", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestCreate(ctx, t, s, s.checkStorageInvariants())
	}},
	{name: "CreateWithTTL", run: func(ctx context.Context, t *testing.T, s *k8sStore) { storagetesting.RunTestCreateWithTTL(ctx, t, s) }},
	{name: "CreateWithKeyExist", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestCreateWithKeyExist(ctx, t, s)
	}},
	{name: "Get", run: func(ctx context.Context, t *testing.T, s *k8sStore) { storagetesting.RunTestGet(ctx, t, s) }},
	{name: "UnconditionalDelete", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestUnconditionalDelete(ctx, t, s)
	}},
	{name: "ConditionalDelete", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestConditionalDelete(ctx, t, s)
	}},
	{name: "DeleteWithSuggestion", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestDeleteWithSuggestion(ctx, t, s)
	}},
	{name: "DeleteWithSuggestionAndConflict", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestDeleteWithSuggestionAndConflict(ctx, t, s)
	}},
	{name: "DeleteWithSuggestionOfDeletedObject", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestDeleteWithSuggestionOfDeletedObject(ctx, t, s)
	}},
	{name: "ValidateDeletionWithSuggestion", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestValidateDeletionWithSuggestion(ctx, t, s)
	}},
	{name: "ValidateDeletionWithOnlySuggestionValid", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestValidateDeletionWithOnlySuggestionValid(ctx, t, s)
	}},
	{name: "DeleteWithConflict", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestDeleteWithConflict(ctx, t, s)
	}},
	{name: "PreconditionalDeleteWithSuggestion", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestPreconditionalDeleteWithSuggestion(ctx, t, s)
	}},
	{name: "PreconditionalDeleteWithSuggestionPass", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestPreconditionalDeleteWithOnlySuggestionPass(ctx, t, s)
	}},
	{name: "ListPaging", run: func(ctx context.Context, t *testing.T, s *k8sStore) { storagetesting.RunTestListPaging(ctx, t, s) }},
	{name: "GetListNonRecursive", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestGetListNonRecursive(ctx, t, s.increaseRV(), s)
	}},
	{name: "GetListRecursivePrefix", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestGetListRecursivePrefix(ctx, t, s)
	}},
	{name: "KeySchema", run: func(ctx context.Context, t *testing.T, s *k8sStore) { storagetesting.RunTestKeySchema(ctx, t, s) }},
	{name: "GuaranteedUpdate", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestGuaranteedUpdate(ctx, t, s, s.checkStorageInvariants())
	}},
	{name: "GuaranteedUpdateWithTTL", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestGuaranteedUpdateWithTTL(ctx, t, s)
	}},
	{name: "GuaranteedUpdateChecksStoredData", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestGuaranteedUpdateChecksStoredData(ctx, t, s)
	}},
	{name: "GuaranteedUpdateWithConflict", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestGuaranteedUpdateWithConflict(ctx, t, s)
	}},
	{name: "GuaranteedUpdateWithSuggestionAndConflict", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestGuaranteedUpdateWithSuggestionAndConflict(ctx, t, s)
	}},
	{name: "TransformationFailure", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestTransformationFailure(ctx, t, s)
	}},
	{name: "List", compacts: true, run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestList(ctx, t, s, s.compaction(), false, s.client.Kubernetes.(*storagetesting.KubernetesRecorder))
	}},
	{name: "ConsistentList", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestConsistentList(ctx, t, s, s.increaseRV(), false, true, false)
	}},
	{name: "CompactRevision", compacts: true, gates: map[featuregate.Feature]bool{features.ListFromCacheSnapshot: true}, run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestCompactRevision(ctx, t, s, s.increaseRV(), s.compaction())
	}},
	{name: "ListContinuation", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestListContinuation(ctx, t, s, s.checkStorageCallsInvariants())
	}},
	{name: "ListPaginationRareObject", gates: map[featuregate.Feature]bool{features.ListFromCacheSnapshot: false}, run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestListPaginationRareObject(ctx, t, s, s.checkStorageCallsInvariants())
	}},
	{name: "ListContinuationWithFilter", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestListContinuationWithFilter(ctx, t, s, s.checkStorageCallsInvariants())
	}},
	{name: "NamespaceScopedList", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestNamespaceScopedList(ctx, t, s)
	}},
	{name: "ListInconsistentContinuation", compacts: true, run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestListInconsistentContinuation(ctx, t, s, s.compaction())
	}},
	{name: "ListResourceVersionMatch", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestListResourceVersionMatch(ctx, t, s)
	}},
	{name: "Stats/SizeBasedListCostEstimate=true", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		if err := s.EnableResourceSizeEstimation(s.keys); err != nil {
			t.Fatal(err)
		}
		storagetesting.RunTestStats(ctx, t, s, s.codec, s.transformer, true)
	}},
	{name: "Stats/SizeBasedListCostEstimate=false", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestStats(ctx, t, s, s.codec, s.transformer, false)
	}},

	// watcher_test.go
	{name: "Watch", run: func(ctx context.Context, t *testing.T, s *k8sStore) { storagetesting.RunTestWatch(ctx, t, s) }},
	{name: "ClusterScopedWatch", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestClusterScopedWatch(ctx, t, s)
	}},
	{name: "NamespaceScopedWatch", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestNamespaceScopedWatch(ctx, t, s)
	}},
	{name: "DeleteTriggerWatch", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestDeleteTriggerWatch(ctx, t, s)
	}},
	{name: "WatchFromZero", compacts: true, run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestWatchFromZero(ctx, t, s, s.compaction())
	}},
	{name: "WatchFromNoneZero", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestWatchFromNonZero(ctx, t, s)
	}},
	{name: "DelayedWatchDelivery", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestDelayedWatchDelivery(ctx, t, s)
	}},
	{name: "WatchError", run: func(ctx context.Context, t *testing.T, s *k8sStore) { storagetesting.RunTestWatchError(ctx, t, s) }},
	{name: "WatchContextCancel", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestWatchContextCancel(ctx, t, s)
	}},
	{name: "WatcherTimeout", run: func(ctx context.Context, t *testing.T, s *k8sStore) { storagetesting.RunTestWatcherTimeout(ctx, t, s) }},
	{name: "WatchDeleteEventObjectHaveLatestRV", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestWatchDeleteEventObjectHaveLatestRV(ctx, t, s)
	}},
	{name: "WatchInitializationSignal", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestWatchInitializationSignal(ctx, t, s)
	}},
	{name: "ProgressNotify", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunOptionalTestProgressNotify(ctx, t, s, s.increaseRV())
	}},
	{name: "WatchDispatchBookmarkEvents", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunTestWatchDispatchBookmarkEvents(ctx, t, s, false)
	}},
	{name: "SendInitialEventsBackwardCompatibility", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunSendInitialEventsBackwardCompatibility(ctx, t, s)
	}},
	{name: "EtcdWatchSemantics", run: func(ctx context.Context, t *testing.T, s *k8sStore) { storagetesting.RunWatchSemantics(ctx, t, s) }},
	{name: "EtcdWatchSemanticsWithConcurrentDecode", gates: map[featuregate.Feature]bool{features.ConcurrentWatchObjectDecode: true}, run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunWatchSemantics(ctx, t, s)
	}},
	{name: "EtcdWatchSemanticInitialEventsExtended", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunWatchSemanticInitialEventsExtended(ctx, t, s)
	}},
	{name: "WatchListMatchSingle", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunWatchListMatchSingle(ctx, t, s)
	}},
	{name: "WatchErrorEventIsBlockingFurtherEvent", run: func(ctx context.Context, t *testing.T, s *k8sStore) {
		storagetesting.RunWatchErrorIsBlockingFurtherEvents(ctx, t, s)
	}},
}

// runKubernetesStorageTests runs every k8sCase, one after another (those
// that compact last), each on a fresh store under its own key prefix on
// endpoints.
func runKubernetesStorageTests(t *testing.T, endpoints []string) {
	var ordered []k8sCase
	for _, compacts := range []bool{false, true} {
		for _, c := range k8sCases {
			if c.compacts == compacts {
				ordered = append(ordered, c)
			}
		}
	}
	for i, c := range ordered {
		t.Run(c.name, func(t *testing.T) {
			for gate, on := range c.gates {
				featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, gate, on)
			}
			s := newK8sStore(t, endpoints, fmt.Sprintf("k8s-%02d", i))
			// Not deferred: the parallel subtests of k8s's tests run after
			// c.run returns, and Cleanup waits for them.
			ctx, cancel := context.WithTimeout(context.Background(), k8sCaseTimeout)
			t.Cleanup(cancel)
			// Some of k8s's tests assert an event's type unchecked
			// (RunTestDelayedWatchDelivery: .(*example.Pod) on a watch
			// error's Status); their panic fails that test, not the run.
			// A panic in one of their own goroutines still ends the run.
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("panic: %v\n%s", r, debug.Stack())
				}
			}()
			c.run(ctx, t, s)
		})
	}
}
