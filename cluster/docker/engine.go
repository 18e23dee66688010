package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// Engine is a connection to the Docker engine through testcontainers-go,
// with Ryuk (testcontainers' reaper container, which would be pulled)
// disabled: cleanup is the package's own, by label.
type Engine struct {
	provider *testcontainers.DockerProvider
	cli      apiClient
	log      *slog.Logger
	owner    string
}

// NewEngine connects to the engine testcontainers-go finds (DOCKER_HOST,
// ~/.testcontainers.properties, the default socket) and checks it answers.
// It disables Ryuk by setting TESTCONTAINERS_RYUK_DISABLED=true in this
// process before testcontainers reads its configuration; if that
// configuration was read earlier with Ryuk enabled, it fails rather than
// let a reaper image be pulled. cli, when not nil, replaces the engine's
// client (tests wrap it to observe calls).
func NewEngine(ctx context.Context, lg *slog.Logger, cli client.APIClient) (*Engine, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	// testcontainers' package-level logger (used by its client) too.
	tclog.SetDefault(tcLogger{lg})
	if !testcontainers.ReadConfig().RyukDisabled {
		return nil, errors.New("docker: testcontainers' Ryuk is enabled in this process; set TESTCONTAINERS_RYUK_DISABLED=true (Ryuk's image would have to be pulled)")
	}
	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tcLogger{lg}),
		// Without this, testcontainers creates and attaches a "reaper_default"
		// network to every container.
		testcontainers.WithDefaultBridgeNetwork(testcontainers.Bridge))
	if err != nil {
		return nil, fmt.Errorf("docker: connect to the Docker engine: %w (is it running, and is DOCKER_HOST right?)", err)
	}
	if cli != nil {
		p.SetClient(cli)
	}
	e := &Engine{provider: p, cli: p.Client(), log: lg, owner: ownerID()}
	if _, err := e.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		p.Close()
		return nil, fmt.Errorf("docker: ping the Docker engine: %w", err)
	}
	return e, nil
}

// Client is the engine's moby client, for what testcontainers does not wrap.
func (e *Engine) Client() client.APIClient { return e.cli }

// Close releases the connection.
func (e *Engine) Close() error { return e.provider.Close() }

// tcLogger sends testcontainers' chatter to slog at debug level.
type tcLogger struct{ lg *slog.Logger }

func (l tcLogger) Printf(format string, v ...any) {
	l.lg.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), "from", "testcontainers")
}

// HasImage reports whether ref is present in the engine; it never pulls.
func (e *Engine) HasImage(ctx context.Context, ref string) (bool, error) {
	_, err := e.cli.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("docker: inspect image %s: %w", ref, err)
}

// serverDockerfile is the image EnsureImage builds: the binary and an empty
// /tmp on nothing, so no base image has to be pulled.
const serverDockerfile = `FROM scratch
COPY tmp /tmp
COPY server /usr/local/bin/server
ENTRYPOINT ["/usr/local/bin/server"]
`

// EnsureImage returns the tag of an image holding binary as its entrypoint,
// building it (with the classic builder, FROM scratch, nothing pulled) unless
// an image with that tag exists. The tag is quorum-local/<base name>:<first
// 16 hex digits of sha256(Dockerfile, binary)>, so a changed binary gets a
// new image and an unchanged one is reused. The binary must be a static
// Linux executable (CGO_ENABLED=0); a dynamically linked one is refused with
// the libraries it needs.
func (e *Engine) EnsureImage(ctx context.Context, binary string) (string, error) {
	if err := CheckStatic(binary); err != nil {
		return "", err
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return "", fmt.Errorf("docker: read server binary: %w", err)
	}
	h := sha256.New()
	io.WriteString(h, serverDockerfile)
	h.Write(bin)
	base := filepath.Base(binary)
	tag := "quorum-local/" + sanitizeRepo(base) + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	if ok, err := e.HasImage(ctx, tag); err != nil || ok {
		return tag, err
	}
	e.log.Info("building server image", "tag", tag, "binary", binary)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
		dir  bool
	}{
		{name: "Dockerfile", mode: 0o644, data: []byte(serverDockerfile)},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "server", mode: 0o755, data: bin},
	} {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}
		if f.dir {
			hdr.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", fmt.Errorf("docker: build context: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", fmt.Errorf("docker: build context: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("docker: build context: %w", err)
	}
	resp, err := e.cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags:        []string{tag},
		Remove:      true,
		ForceRemove: true,
		PullParent:  false,
		Version:     build.BuilderV1,
		Labels:      map[string]string{LabelImage: base},
	})
	if err != nil {
		return "", fmt.Errorf("docker: build image %s: %w", tag, err)
	}
	defer resp.Body.Close()
	if err := readBuildStream(resp.Body); err != nil {
		return "", fmt.Errorf("docker: build image %s: %w", tag, err)
	}
	if ok, err := e.HasImage(ctx, tag); err != nil || !ok {
		return "", fmt.Errorf("docker: image %s missing after its build (%v)", tag, err)
	}
	return tag, nil
}

// readBuildStream consumes the engine's JSON progress stream and returns
// the first error it reports.
func readBuildStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	var out strings.Builder
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read build output: %w", err)
		}
		if m.Error != nil {
			return fmt.Errorf("%s (output: %s)", m.Error.Message, strings.TrimSpace(out.String()))
		}
		out.WriteString(m.Stream)
	}
}

func sanitizeRepo(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "server"
	}
	return strings.Trim(b.String(), "-_.")
}

// CheckStatic returns nil if path is a Linux ELF executable with no program
// interpreter and no shared-library dependencies, as a FROM scratch image
// needs.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("docker: server binary %s is not a Linux executable: %w", path, err)
	}
	defer f.Close()
	libs, _ := f.ImportedLibraries()
	interp := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp = true
		}
	}
	if interp || len(libs) > 0 {
		return fmt.Errorf("docker: server binary %s is dynamically linked (needs %s); the image is FROM scratch, so rebuild it static: CGO_ENABLED=0 go build -o %s ...",
			path, strings.Join(append(libs, "a dynamic loader"), ", "), filepath.Base(path))
	}
	return nil
}

// ownerID identifies this process on this host: "<host>/<pid>/<start>",
// where start is the process start time from /proc/self/stat, so a reused
// pid is not taken for a live owner.
func ownerID() string {
	host, _ := os.Hostname()
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + procStart(os.Getpid())
}

// procStart returns field 22 (starttime) of /proc/<pid>/stat, or "" if the
// process does not exist.
func procStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}
