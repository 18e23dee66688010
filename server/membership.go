package server

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Member is one cluster member as MemberList reports it, in etcd's JSON
// (membership.Member: the same keys, so that a conf change's context and
// the peer /members endpoint read as etcd's). Peer URLs and IsLearner
// change only through conf changes; Name and ClientURLs are published by
// the member itself through Raft once it is up (as etcd does), so every
// member learns them. A member added but not started yet has no name.
type Member struct {
	ID         uint64   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	IsLearner  bool     `json:"isLearner,omitempty"`
	Name       string   `json:"name,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
}

// Membership is the cluster's configuration: its ID, its members and the
// IDs removed from it, which are never admitted again. It is part of the
// replicated state (snapshots carry it): conf changes and the members'
// published attributes change it, applied in log order.
type Membership struct {
	ClusterID uint64    `json:"clusterID"`
	Members   []*Member `json:"members"`           // sorted by ID
	Removed   []uint64  `json:"removed,omitempty"` // sorted
}

// ComputeMemberID derives a member's ID from its peer URLs and the cluster
// token exactly as etcd does, so that the same flags give the same IDs.
func ComputeMemberID(peerURLs []string, token string) uint64 {
	s := append([]string(nil), peerURLs...)
	sort.Strings(s)
	b := []byte(strings.Join(s, ""))
	b = append(b, []byte(token)...)
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// ComputeClusterID derives the cluster ID from the sorted member IDs exactly
// as etcd does.
func ComputeClusterID(ids []uint64) uint64 {
	s := append([]uint64(nil), ids...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	b := make([]byte, 8*len(s))
	for i, id := range s {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// NewMembership builds the bootstrap membership from --initial-cluster.
func NewMembership(initial map[string][]url.URL, token string) *Membership {
	m := &Membership{}
	var ids []uint64
	for name, us := range initial {
		peer := make([]string, len(us))
		for i := range us {
			peer[i] = us[i].String()
		}
		sort.Strings(peer)
		id := ComputeMemberID(peer, token)
		m.Members = append(m.Members, &Member{ID: id, Name: name, PeerURLs: peer})
		ids = append(ids, id)
	}
	sort.Slice(m.Members, func(i, j int) bool { return m.Members[i].ID < m.Members[j].ID })
	m.ClusterID = ComputeClusterID(ids)
	return m
}

// Member returns the member with the given ID, or nil.
func (m *Membership) Member(id uint64) *Member {
	for _, x := range m.Members {
		if x.ID == id {
			return x
		}
	}
	return nil
}

// MemberByName returns the member with the given name, or nil.
func (m *Membership) MemberByName(name string) *Member {
	for _, x := range m.Members {
		if x.Name == name {
			return x
		}
	}
	return nil
}

// IDs returns the member IDs in ascending order.
func (m *Membership) IDs() []uint64 {
	out := make([]uint64, len(m.Members))
	for i, x := range m.Members {
		out[i] = x.ID
	}
	return out
}

// Clone returns a deep copy; readers get clones so the applier may keep
// mutating its own.
func (m *Membership) Clone() *Membership {
	c := &Membership{ClusterID: m.ClusterID, Members: make([]*Member, len(m.Members)),
		Removed: append([]uint64(nil), m.Removed...)}
	for i, x := range m.Members {
		y := *x
		y.PeerURLs = append([]string(nil), x.PeerURLs...)
		y.ClientURLs = append([]string(nil), x.ClientURLs...)
		c.Members[i] = &y
	}
	return c
}

// memberMeta is what a member persists about itself at bootstrap, in
// <data-dir>/member/meta.json; on restart it replaces the --initial-* flags.
//
// Membership is the membership the member started with (--initial-cluster,
// or the cluster's as its peers reported it when the member joined an
// existing cluster): the peers its transport dials before the log is
// replayed. Joined says the member joined an existing cluster; its applied
// membership then starts empty and is rebuilt from the log (or a snapshot),
// exactly as on the members that were there.
type memberMeta struct {
	MemberID   string      `json:"memberID"`
	Membership *Membership `json:"membership"`
	Joined     bool        `json:"joined,omitempty"`
}

const metaFile = "meta.json"

func writeMeta(dir string, id uint64, m *Membership, joined bool) error {
	b, err := json.MarshalIndent(memberMeta{MemberID: strconv.FormatUint(id, 16), Membership: m, Joined: joined}, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write member metadata: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write member metadata %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync member metadata %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, metaFile)); err != nil {
		return fmt.Errorf("write member metadata: %w", err)
	}
	return syncDir(dir)
}

func readMeta(dir string) (uint64, memberMeta, error) {
	p := filepath.Join(dir, metaFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, memberMeta{}, fmt.Errorf("read member metadata: %w", err)
	}
	var mm memberMeta
	if err := json.Unmarshal(b, &mm); err != nil {
		return 0, memberMeta{}, fmt.Errorf("member metadata %s is damaged: %w", p, err)
	}
	id, err := strconv.ParseUint(mm.MemberID, 16, 64)
	if err != nil || mm.Membership == nil || mm.Membership.Member(id) == nil {
		return 0, memberMeta{}, fmt.Errorf("member metadata %s is damaged: member %q not in its membership", p, mm.MemberID)
	}
	return id, mm, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
