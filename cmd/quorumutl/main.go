// Command quorumutl is quorumd's etcdutl: it works on snapshot files
// offline, with etcdutl's commands, flags and output.
//
//	quorumutl snapshot status backup.db -w json
//	quorumutl snapshot restore backup.db --name m1 --initial-cluster m1=http://10.0.0.1:2380,... \
//	        --initial-cluster-token t --initial-advertise-peer-urls http://10.0.0.1:2380 --data-dir /var/lib/quorumd
//
// A snapshot is an etcd v3.6 backend file, from quorumd's or etcd's
// Maintenance.Snapshot (etcdctl snapshot save); restore turns it into a
// quorumd data dir (server.RestoreDataDir). The snapshot command is
// etcdutl's own (go.etcd.io/etcd/etcdutl/v3/etcdutl) with its status
// subcommand pointed at quorumd's reader and its restore subcommand
// replaced by quorumd's, which takes the flags quorumd honours under
// etcdutl's names and help.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/etcdutl/v3/etcdutl"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/etcd/pkg/v3/cobrautl"

	"github.com/quorum-kv/quorum/server"
	"github.com/quorum-kv/quorum/server/etcdbolt"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		cobrautl.ExitWithError(cobrautl.ExitError, err)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:        "quorumutl",
		Short:      "An administrative command line tool for quorumd (etcdutl's snapshot commands).",
		SuggestFor: []string{"quorumutl"},
	}
	// etcdutl's root flag, which its printers read.
	root.PersistentFlags().StringVarP(&etcdutl.OutputFormat, "write-out", "w", "simple", "set the output format (fields, json, protobuf, simple, table)")
	root.SetHelpTemplate(`{{.UsageString}}`)
	root.AddCommand(newSnapshotCommand())
	return root
}

// newSnapshotCommand is etcdutl's snapshot command with quorumd's status
// and restore.
func newSnapshotCommand() *cobra.Command {
	cmd := etcdutl.NewSnapshotCommand()
	for _, sub := range cmd.Commands() {
		switch sub.Name() {
		case "status":
			sub.Run = snapshotStatus
		case "restore":
			cmd.RemoveCommand(sub)
		}
	}
	cmd.AddCommand(newSnapshotRestoreCommand())
	return cmd
}

// snapshotStatus is etcdutl's SnapshotStatusCommandFunc over quorumd's
// reader (server/etcdbolt), printed by etcdutl's printers.
func snapshotStatus(cmd *cobra.Command, args []string) {
	if len(args) != 1 {
		cobrautl.ExitWithError(cobrautl.ExitBadArgs, fmt.Errorf("snapshot status requires exactly one argument"))
	}
	if fi, err := os.Stat(args[0]); err != nil {
		cobrautl.ExitWithError(cobrautl.ExitError, err)
	} else if fi.IsDir() {
		cobrautl.ExitWithError(cobrautl.ExitError, fmt.Errorf("expected file path, got directory %s", args[0]))
	}
	p := etcdutl.NewPrinter(etcdutl.OutputFormat)
	if p == nil {
		cobrautl.ExitWithError(cobrautl.ExitBadFeature, fmt.Errorf("unsupported output format"))
	}
	f, err := etcdbolt.Open(args[0])
	if err != nil {
		cobrautl.ExitWithError(cobrautl.ExitError, err)
	}
	st, err := f.Status()
	f.Close()
	if err != nil {
		cobrautl.ExitWithError(cobrautl.ExitError, err)
	}
	p.DBStatus(snapshot.Status{Hash: st.Hash, Revision: st.Revision, TotalKey: st.TotalKey, TotalSize: st.TotalSize, Version: st.Version})
}

// newSnapshotRestoreCommand is etcdutl's restore command (use, defaults,
// help) for the flags quorumd's restore honours.
func newSnapshotRestoreCommand() *cobra.Command {
	var cfg server.RestoreConfig
	cmd := &cobra.Command{
		Use:   "restore <filename> --data-dir {output dir} [options]",
		Short: "Restores an etcd member snapshot to an etcd directory",
		Run: func(_ *cobra.Command, args []string) {
			if len(args) != 1 {
				cobrautl.ExitWithError(cobrautl.ExitBadArgs, fmt.Errorf("snapshot restore requires exactly one argument"))
			}
			cfg.SnapshotPath = args[0]
			if cfg.DataDir == "" {
				cfg.DataDir = cfg.Name + ".etcd" // etcdutl's default
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
			if err := server.RestoreDataDir(cfg); err != nil {
				cobrautl.ExitWithError(cobrautl.ExitError, err)
			}
		},
	}
	cmd.Flags().StringVar(&cfg.DataDir, "data-dir", "", "Path to the output data directory")
	cmd.Flags().StringVar(&cfg.WALDir, "wal-dir", "", "Path to the WAL directory (use --data-dir if none given)")
	cmd.Flags().StringVar(&cfg.InitialCluster, "initial-cluster", "default=http://localhost:2380", "Initial cluster configuration for restore bootstrap")
	cmd.Flags().StringVar(&cfg.InitialClusterToken, "initial-cluster-token", "etcd-cluster", "Initial cluster token for the etcd cluster during restore bootstrap")
	cmd.Flags().StringVar(&cfg.InitialAdvertisePeerURLs, "initial-advertise-peer-urls", "http://localhost:2380", "List of this member's peer URLs to advertise to the rest of the cluster")
	cmd.Flags().StringVar(&cfg.Name, "name", "default", "Human-readable name for this member")
	cmd.Flags().BoolVar(&cfg.SkipHashCheck, "skip-hash-check", false, "Ignore snapshot integrity hash value (required if copied from data directory)")
	cmd.MarkFlagDirname("data-dir")
	return cmd
}
