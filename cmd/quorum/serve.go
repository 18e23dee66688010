package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorum-kv/quorum/harness"
	"github.com/quorum-kv/quorum/reports"
)

func newServeCmd(stdout io.Writer) *cobra.Command {
	listen := "127.0.0.1:8080"
	cmd := &cobra.Command{
		Use:   "serve [STORE]",
		Short: "Serve a web page over a run store: every run, newest first, with its verdict and links to its report and files",
		Long: `Serve the run store (default: the store quorum test writes, ./` + harness.DefaultConfig().Store + `)
over HTTP. The index lists every run newest first, coloured by verdict, with
its workload, nemesis, size, duration and seed, and links to its report and
every file of the run (history, results, logs, plots). The store is read
again on every request, so new runs appear as they finish. Files are served
read-only from inside the store only.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store := harness.DefaultConfig().Store
			if len(args) == 1 {
				store = args[0]
			}
			if st, err := os.Stat(store); err != nil || !st.IsDir() {
				return &exitError{2, fmt.Errorf("run store %s is not a directory (run quorum test first, or name the store): %v", store, err)}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{2, fmt.Errorf("serve: listen on %s (--listen): %w", listen, err)}
			}
			fmt.Fprintf(stdout, "serving %s on http://%s/\n", store, ln.Addr())
			srv := &http.Server{Handler: storeHandler(store), ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-cmd.Context().Done()
				srv.Close()
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return &exitError{2, err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", listen, "address to serve on (host:port; port 0 picks one)")
	return cmd
}

// storeHandler serves the index of store at / and the store's files below
// it.
func storeHandler(store string) http.Handler {
	files := http.FileServer(http.Dir(filepath.Clean(store)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" && r.URL.Path != "/index.html" {
			files.ServeHTTP(w, r)
			return
		}
		runs, err := reports.ScanStore(store)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := reports.WriteStoreIndex(w, store, runs); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}
