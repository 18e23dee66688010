// parseCompactionRetention is go.etcd.io/etcd/server/v3@v3.6.16/embed/etcd.go's
// (unexported there; StartEtcd calls it on embed.Config's
// AutoCompactionMode and AutoCompactionRetention).
// Copyright 2016 The etcd Authors, licensed under the Apache License 2.0
// (http://www.apache.org/licenses/LICENSE-2.0); unchanged.

package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// parseCompactionRetention turns --auto-compaction-retention into the
// duration etcd's compactor takes: a bare number is hours in periodic
// mode and a count of revisions in revision mode; anything else must be a
// Go duration ("30m", "1s").
func parseCompactionRetention(mode, retention string) (ret time.Duration, err error) {
	h, err := strconv.Atoi(retention)
	if err == nil && h >= 0 {
		switch mode {
		case embed.CompactorModeRevision:
			ret = time.Duration(int64(h))
		case embed.CompactorModePeriodic:
			ret = time.Duration(int64(h)) * time.Hour
		case "":
			return 0, errors.New("--auto-compaction-mode is undefined")
		}
	} else {
		// periodic compaction
		ret, err = time.ParseDuration(retention)
		if err != nil {
			return 0, fmt.Errorf("error parsing CompactionRetention: %w", err)
		}
	}
	return ret, nil
}

// autoCompaction is StartEtcd's reading of the two flags: an empty
// retention is "0" (off).
func autoCompaction(ec *embed.Config) (mode string, retention time.Duration, err error) {
	r := ec.AutoCompactionRetention
	if len(r) == 0 {
		r = "0"
	}
	retention, err = parseCompactionRetention(ec.AutoCompactionMode, r)
	return ec.AutoCompactionMode, retention, err
}
