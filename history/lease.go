package history

// Operation names (Event.F) of the lease workload.
const (
	// FGrant grants a lease: the invocation's Value is the JSON of a
	// LeaseSpec (ID zero), an ok completion's the LeaseSpec with the
	// lease's ID and granted TTL.
	FGrant = "grant"
	// FLeasePut puts Key attached to a lease: Value is the JSON of the
	// LeaseSpec; an ok completion's Revision the put's revision.
	FLeasePut = "lease-put"
	// FKeepAlive renews a lease once: Value the JSON of the LeaseSpec; an
	// ok completion's Value the LeaseSpec with TTL the TTL the server
	// answered (a renewal the server refused, TTL <= 0, is fail).
	FKeepAlive = "keepalive"
	// FRevoke revokes a lease: Value the JSON of the LeaseSpec; an ok
	// completion's Revision the revoke's header revision (the revision
	// at which its keys were deleted).
	FRevoke = "revoke"
	// FLeaseRead reads every key under Key (the workload's prefix) with
	// the lease each is attached to: an ok completion's Value is the JSON
	// of a LeaseRead, Revision its header revision. The invocation's
	// Value is "serializable" or "linearizable".
	FLeaseRead = "lease-read"
)

// Plans of a lease in the lease workload.
const (
	LeaseKeep    = "keep"    // kept alive, then revoked
	LeaseAbandon = "abandon" // never renewed: must expire
	LeaseRevoke  = "revoke"  // revoked soon after its keys are put
)

// LeaseSpec is one lease of the lease workload.
type LeaseSpec struct {
	ID int64 `json:"id,omitempty"`
	// TTL is the TTL asked for (invocation) or granted (completion),
	// in seconds.
	TTL int64 `json:"ttl"`
	// Plan is LeaseKeep, LeaseAbandon or LeaseRevoke.
	Plan string `json:"plan"`
	// BoundNS is how long after its TTL ran out an abandoned lease's keys
	// may still be read, in nanoseconds: the bound the checker holds the
	// server to, recorded with the lease so that the check is a function
	// of the history alone.
	BoundNS int64 `json:"bound_ns"`
}

// LeaseRead is what an FLeaseRead saw: every key read and its lease (0:
// none).
type LeaseRead struct {
	Keys map[string]int64 `json:"keys"`
}
