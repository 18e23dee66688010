// Command benchmark is etcd's benchmark tool (tools/benchmark in the etcd
// repository), built from a pinned v3.6 module version. Its main mirrors
// upstream's tools/benchmark/main.go.
package main

import (
	"fmt"
	"os"

	"go.etcd.io/etcd/v3/tools/benchmark/cmd"
)

func main() {
	if err := cmd.RootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(-1)
	}
}
