package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quorum-kv/quorum/cluster"
)

func newCertsCmd(stdout io.Writer) *cobra.Command {
	var (
		dir     string
		members int
		hosts   []string
	)
	cmd := &cobra.Command{
		Use:   "certs --dir DIR [--members N] [--hosts IP,NAME,...]",
		Short: "Write a fresh CA, member certificates and a client certificate for a TLS cluster",
		Long: `Write, with crypto/x509 and nothing fetched, the files a TLS cluster run
by hand needs (the same ones quorum test --tls makes for each run):

  DIR/ca.crt                 --trusted-ca-file, --peer-trusted-ca-file, quorumctl --cacert
  DIR/nI.crt, DIR/nI.key     member I's --cert-file/--key-file and --peer-cert-file/--peer-key-file
  DIR/client.crt, client.key quorumctl --cert/--key (CN "client")

Every certificate is good for server and client authentication and carries
--hosts as its subject alternative names (IP addresses or DNS names). Keys
are ECDSA P-256 with mode 0600; existing files are replaced.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return &exitError{2, errors.New("--dir is required")}
			}
			if members < 1 {
				return &exitError{2, fmt.Errorf("--members is %d; want at least 1", members)}
			}
			names := make([]string, members)
			for i := range names {
				names[i] = fmt.Sprintf("n%d", i+1)
			}
			t, err := cluster.MakeTLS(dir, names, hosts)
			if err != nil {
				return &exitError{2, err}
			}
			fmt.Fprintf(stdout, "wrote %s, %s.{crt,key}, client.{crt,key} in %s for %s\n",
				"ca.crt", strings.Join(names, ","), t.Dir, strings.Join(hosts, ","))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory to write the files in (created with mode 0700)")
	f.IntVar(&members, "members", 3, "member certificates to write: n1..nN")
	f.StringSliceVar(&hosts, "hosts", []string{"127.0.0.1", "localhost"}, "IP addresses and DNS names every certificate is valid for")
	return cmd
}
