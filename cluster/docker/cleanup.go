package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// RemoveRun removes every container (forcibly, with its anonymous volumes),
// volume and network labelled with runID. Missing resources are not errors.
// A pass that fails (a volume still held by a container the engine was
// just making, a network with an endpoint being torn down) is followed by
// up to two more, half a second apart; the last pass's errors are returned.
func (e *Engine) RemoveRun(ctx context.Context, runID string) error {
	var err error
	for pass := range removePasses {
		if pass > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(500 * time.Millisecond):
			}
		}
		if err = e.removeLabelled(ctx, LabelRun+"="+runID); err == nil {
			return nil
		}
		e.log.Warn("docker: clean-up pass failed", "run", runID, "pass", pass+1, "of", removePasses, "err", err)
	}
	return err
}

// removePasses is how many times RemoveRun tries.
const removePasses = 3

func (e *Engine) removeLabelled(ctx context.Context, label string) error {
	f := client.Filters{}.Add("label", label)
	cli := e.cli
	var errs []error
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("docker: list containers %s: %w", label, err)
	}
	for _, c := range cs.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", strings.Join(c.Names, ","), err))
		}
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list volumes %s: %w", label, err))
	} else {
		for _, v := range vs.Items {
			if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			}
		}
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks %s: %w", label, err))
	} else {
		for _, n := range ns.Items {
			if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("docker: clean up %s: %w", label, err)
	}
	return nil
}

// Sweep removes what earlier runs left behind when their harness process
// died without closing (SIGKILL, a crash): every labelled container, volume
// and network whose owner was a process on this host that no longer runs.
// Resources of live processes and of other hosts are left alone. It returns
// the run ids it removed.
func (e *Engine) Sweep(ctx context.Context) ([]string, error) {
	f := client.Filters{}.Add("label", LabelOwner)
	owners := map[string]string{} // run -> owner
	cs, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker: sweep: list containers: %w", err)
	}
	for _, c := range cs.Items {
		owners[c.Labels[LabelRun]] = c.Labels[LabelOwner]
	}
	if vs, err := e.cli.VolumeList(ctx, client.VolumeListOptions{Filters: f}); err == nil {
		for _, v := range vs.Items {
			owners[v.Labels[LabelRun]] = v.Labels[LabelOwner]
		}
	}
	if ns, err := e.cli.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err == nil {
		for _, n := range ns.Items {
			owners[n.Labels[LabelRun]] = n.Labels[LabelOwner]
		}
	}
	var removed []string
	var errs []error
	for run, owner := range owners {
		if run == "" || ownerAlive(owner) {
			continue
		}
		e.log.Warn("docker: removing leftovers of a run whose harness died", "run", run, "owner", owner)
		if err := e.RemoveRun(ctx, run); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, run)
	}
	return removed, errors.Join(errs...)
}

// ownerAlive reports whether owner ("<host>/<pid>/<start>") is a running
// process, or may be: owners on other hosts count as alive.
func ownerAlive(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 3 {
		return true // not ours to judge
	}
	if host, _ := os.Hostname(); host != parts[0] {
		return true
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		return true
	}
	return procStart(pid) == parts[2]
}
