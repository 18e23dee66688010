// Command etcd is the upstream etcd v3.6 server, built from the pinned
// module version so that Quorum can compare quorumd against real etcd.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
