// Package store persists the controller's state: hosts, VMs, images,
// networks and their ports, stored flavors, key pairs, migrations, intents, the
// cluster's settings, API tokens, project quotas and the audit log.
//
// Store is one interface over two SQL engines: SQLite (embedded, the
// default; package store/sqlite) and PostgreSQL (package store/postgres)
// for clusters that outgrow one controller. The same suite, storetest,
// runs against both. Errors wrap the sentinels in internal/errs.
package store

import (
	"context"
	"time"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/errs"
)

// VMFilter narrows VMs. Empty fields match everything.
type VMFilter struct {
	ID      string // one VM by its ID (Nova's server IDs)
	Host    string
	Project string
}

// Store is the controller's persistent state.
type Store interface {
	// Kind is "sqlite" or "postgres".
	Kind() string

	// UpsertHost records a heartbeat: it inserts a new host (enabled, up,
	// RegisteredAt now) or updates an existing one's reported fields, state
	// and LastHeartbeat, keeping Enabled and RegisteredAt. created tells
	// which happened.
	UpsertHost(ctx context.Context, h api.Host) (created bool, err error)
	Host(ctx context.Context, name string) (api.Host, error)
	Hosts(ctx context.Context) ([]api.Host, error)
	// MarkHostsDown sets state=down on up hosts whose LastHeartbeat is
	// before staleBefore and returns their names.
	MarkHostsDown(ctx context.Context, staleBefore time.Time) ([]string, error)
	SetHostEnabled(ctx context.Context, name string, enabled bool) error
	// UpdateHost changes what the controller keeps of a host beyond its
	// heartbeats (enabled, the disabled reason, forced down).
	UpdateHost(ctx context.Context, name string, fn func(*api.Host) error) (api.Host, error)

	// CreateVM inserts a VM; ErrConflict when the name is taken.
	CreateVM(ctx context.Context, vm api.VM) error
	VM(ctx context.Context, name string) (api.VM, error)
	VMs(ctx context.Context, f VMFilter) ([]api.VM, error)
	// UpdateVM reads a VM, applies fn and writes it back in one
	// transaction; fn's error aborts the update and is returned as is.
	// UpdatedAt is set by the store.
	UpdateVM(ctx context.Context, name string, fn func(*api.VM) error) (api.VM, error)
	DeleteVM(ctx context.Context, name string) error

	// CreateImage inserts an image; ErrConflict when the name is taken.
	CreateImage(ctx context.Context, im api.Image) error
	Image(ctx context.Context, name string) (api.Image, error)
	Images(ctx context.Context) ([]api.Image, error)
	// DeleteImage removes an image; ErrConflict while a VM uses it.
	DeleteImage(ctx context.Context, name string) error

	// CreateNetwork inserts a network; ErrConflict when the name is taken.
	CreateNetwork(ctx context.Context, n api.Network) error
	// Network reads one network with Ports (the count of its ports)
	// filled in; ErrNotFound when there is none.
	Network(ctx context.Context, name string) (api.Network, error)
	// Networks lists networks by name, Ports filled in.
	Networks(ctx context.Context) ([]api.Network, error)
	// DeleteNetwork removes a network; ErrNotFound if unknown;
	// ErrConflict while any port uses it, the message naming the VM IDs
	// of those ports.
	DeleteNetwork(ctx context.Context, name string) error

	// CreatePorts inserts ports, all or none, in one transaction.
	// ErrNotFound when a port's network does not exist (also when it is
	// deleted concurrently); ErrConflict when a MAC is taken anywhere in
	// the cluster ("mac M is taken") or an IP is taken in its network
	// ("address A is taken on network N"). The database enforces both.
	CreatePorts(ctx context.Context, ports []api.Port) error
	// Ports lists the ports that f matches, by VM ID and then in the
	// order each VM's ports were created (passed to CreatePorts).
	Ports(ctx context.Context, f PortFilter) ([]api.Port, error)
	// DeletePorts removes every port of a VM (none is no error), freeing
	// their MACs and IPs.
	DeletePorts(ctx context.Context, vmID string) error

	// CreateFlavor inserts a stored flavor; ErrConflict when its ID or
	// its name is taken, the message saying which.
	CreateFlavor(ctx context.Context, f api.NamedFlavor) error
	// Flavor reads the flavor with this ID or, when none has it, the
	// one with this name; ErrNotFound when neither matches.
	Flavor(ctx context.Context, nameOrID string) (api.NamedFlavor, error)
	// Flavors lists flavors by name.
	Flavors(ctx context.Context) ([]api.NamedFlavor, error)
	// DeleteFlavor removes the flavor with this ID; ErrNotFound if none.
	DeleteFlavor(ctx context.Context, id string) error

	// CreateKeyPair inserts a key pair; ErrConflict when its owner has
	// one of that name.
	CreateKeyPair(ctx context.Context, k api.KeyPair) error
	// KeyPair reads one owner's key pair by name; ErrNotFound if none.
	KeyPair(ctx context.Context, owner, name string) (api.KeyPair, error)
	// KeyPairs lists one owner's key pairs by name, or with owner ""
	// every owner's, by owner and then name.
	KeyPairs(ctx context.Context, owner string) ([]api.KeyPair, error)
	// DeleteKeyPair removes one owner's key pair; ErrNotFound if none.
	DeleteKeyPair(ctx context.Context, owner, name string) error

	// CreateMigration inserts a migration record.
	CreateMigration(ctx context.Context, m api.Migration) error
	Migration(ctx context.Context, id string) (api.Migration, error)
	// Migrations lists migrations, newest first; with active, only those
	// not yet in a final state.
	Migrations(ctx context.Context, f MigrationFilter) ([]api.Migration, error)
	// UpdateMigration is UpdateVM for migrations.
	UpdateMigration(ctx context.Context, id string, fn func(*api.Migration) error) (api.Migration, error)

	// CreateIntent inserts an intent record with its operations.
	CreateIntent(ctx context.Context, in api.Intent) error
	Intent(ctx context.Context, id string) (api.Intent, error)
	// Intents lists intents, newest first; with active, only those not
	// yet in a final state.
	Intents(ctx context.Context, f IntentFilter) ([]api.Intent, error)
	// UpdateIntent is UpdateVM for intents.
	UpdateIntent(ctx context.Context, id string, fn func(*api.Intent) error) (api.Intent, error)

	// ClusterSettings reads the cluster's settings (all zero until set).
	ClusterSettings(ctx context.Context) (api.ClusterSettings, error)
	// UpdateClusterSettings is UpdateVM for the cluster's one settings
	// record, created on the first update.
	UpdateClusterSettings(ctx context.Context, fn func(*api.ClusterSettings) error) (api.ClusterSettings, error)

	// CreateToken inserts an API token's record; ErrConflict when its ID
	// is taken.
	CreateToken(ctx context.Context, t Token) error
	Token(ctx context.Context, id string) (Token, error)
	// Tokens lists tokens by ID, revoked ones too.
	Tokens(ctx context.Context) ([]Token, error)
	// UpdateToken is UpdateVM for tokens.
	UpdateToken(ctx context.Context, id string, fn func(*Token) error) (Token, error)

	// Quotas lists the projects that have a quota (Usage left zero).
	Quotas(ctx context.Context) ([]api.Project, error)
	// SetQuota sets a project's quota, creating its record.
	SetQuota(ctx context.Context, project string, q api.Quota) (api.Project, error)

	// AddAudit appends an audit record.
	AddAudit(ctx context.Context, r api.AuditRecord) error
	// Audit lists audit records newest first (f.Limit of them; 0: 100).
	Audit(ctx context.Context, f api.AuditFilter) ([]api.AuditRecord, error)
	// PruneAudit removes the records older than before and says how many.
	PruneAudit(ctx context.Context, before time.Time) (int, error)

	Close() error
}

// VMNotFound is the error for a VM that does not exist, the same
// wherever it is asked for: the API answers another project's VM with it
// too, so that its existence is not given away.
func VMNotFound(name string) error {
	return errs.NotFound("vm %q not found; list VMs with: godwit vm list", name)
}

// Token is an API token's record: the token and the SHA-256 of its
// secret, which never leaves the store (api.Token has no such field).
type Token struct {
	api.Token
	SHA256 string `json:"sha256"`
}

// PortFilter narrows ports. Empty fields match everything.
type PortFilter struct {
	Network string
	VMID    string
}

// IntentFilter narrows intents. Empty fields match everything.
type IntentFilter struct {
	Target string
	Active bool
}

// MigrationFilter narrows migrations. Empty fields match everything.
type MigrationFilter struct {
	VM     string
	Active bool // only migrations not in a final state
}
