// Command quorumctl is etcdctl, the etcd v3 command-line client, built from
// go.etcd.io/etcd/etcdctl/v3/ctlv3 so that every etcdctl command, flag,
// output format and ETCDCTL_* environment variable works unchanged against a
// quorumd (or etcd) cluster.
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() {
	ctlv3.MustStart()
}
