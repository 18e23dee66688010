package main

import (
	"flag"
	"fmt"
	"io"
)

// printHelp prints the usage and every flag in flagTable's order, in the
// layout of etcd's --help, each with what quorumd does with it.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usageline)
	fmt.Fprintln(w, "Flags (etcd 3.6's; see docs/flags.md):")
	for _, f := range flagTable {
		if f.Class == ignoredAsEtcd {
			continue
		}
		fl := fs.Lookup(f.Name)
		if fl == nil {
			continue
		}
		fmt.Fprintf(w, "  --%s '%s'\n    %s\n    quorumd: %s", f.Name, fl.DefValue, fl.Usage, f.Class)
		if f.Reason != "" {
			fmt.Fprintf(w, " (%s)", f.Reason)
		}
		fmt.Fprintln(w)
	}
}
