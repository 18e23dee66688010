package workloads

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/quorum-kv/quorum/history"
)

// txnKeys returns the keys ops append to and the keys they only read, each
// once, in first-use order.
func txnKeys(ops []history.MicroOp) (appended, readOnly []string) {
	seen := map[string]bool{}
	for _, m := range ops {
		if m.F == history.MicroAppend && !seen[m.Key] {
			seen[m.Key] = true
			appended = append(appended, m.Key)
		}
	}
	for _, m := range ops {
		if !seen[m.Key] {
			seen[m.Key] = true
			readOnly = append(readOnly, m.Key)
		}
	}
	return appended, readOnly
}

// applyTxn performs ops in order on lists, which holds the list of every
// key ops use as the transaction found it, and returns ops with every
// read's list filled in (a new slice; nil for an empty list) and the new
// list of every appended key. lists is not modified.
func applyTxn(ops []history.MicroOp, lists map[string][]int) (done []history.MicroOp, writes map[string][]int) {
	cur := make(map[string][]int, len(lists))
	for k, l := range lists {
		cur[k] = l
	}
	writes = map[string][]int{}
	done = make([]history.MicroOp, len(ops))
	for i, m := range ops {
		done[i] = m
		switch m.F {
		case history.MicroAppend:
			l := append(append([]int(nil), cur[m.Key]...), m.Value)
			cur[m.Key], writes[m.Key] = l, l
		case history.MicroRead:
			if l := cur[m.Key]; len(l) > 0 {
				done[i].Read = append([]int(nil), l...)
			} else {
				done[i].Read = nil
			}
		}
	}
	return done, writes
}

// encodeList encodes an append key's list as comma-separated decimals.
func encodeList(l []int) string {
	var b strings.Builder
	for i, v := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(v))
	}
	return b.String()
}

// decodeList parses what encodeList wrote ("": empty).
func decodeList(key, s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	l := make([]int, len(parts))
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("key %s holds %q, not a list of ints: %w", key, s, err)
		}
		l[i] = v
	}
	return l, nil
}
