//go:build bugzoo

package main

import (
	"flag"

	"github.com/quorum-kv/quorum/server/bugzoo"
)

// addZooFlags registers --bugzoo, only in a binary built with -tags
// bugzoo (quorum zoo builds one).
func addZooFlags(fs *flag.FlagSet) {
	fs.Func("bugzoo", "Plant one known bug (bug zoo builds only): "+zooNames(), bugzoo.Set)
}

func zooNames() string {
	s := ""
	for i, b := range bugzoo.All {
		if i > 0 {
			s += ", "
		}
		s += string(b)
	}
	return s
}
