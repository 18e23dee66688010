// Package etcdbolt is etcd v3.6's backend format as quorumd reads and
// writes it: the key bucket's revision keys, the HashKV hash etcd computes
// over them, and the bbolt database in etcd's schema that etcd's snapshots
// are, so that etcdctl, etcdutl and etcd itself take quorumd's snapshots
// and quorumd takes theirs.
package etcdbolt
