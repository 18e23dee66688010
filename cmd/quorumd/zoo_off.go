//go:build !bugzoo

package main

import "flag"

// addZooFlags registers nothing: only a -tags bugzoo build has --bugzoo.
func addZooFlags(*flag.FlagSet) {}
