package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// NetworkType says how a network reaches its VMs on each host.
type NetworkType string

// Network types.
const (
	// NetworkBridge: each host attaches the network's VMs to a Linux
	// bridge of its own, with the host's uplink for the network (agent
	// --uplink NET=IFACE) as one of the bridge's ports, the way Neutron's
	// bridge_mappings do. The embedded default.
	NetworkBridge NetworkType = "bridge"
)

// Network defaults and bounds.
const (
	DefaultMTU = 1500
	MinMTU     = 576
	MaxMTU     = 9000
)

// Network is an IPv4 network VMs attach to. Its subnet is the pool
// addresses are handed out from; the gateway is the subnet's router (on
// a local cluster, the machine itself).
type Network struct {
	Name    string      `json:"name"`
	Type    NetworkType `json:"type"`
	Subnet  string      `json:"subnet"`  // CIDR, e.g. 10.99.0.0/24
	Gateway string      `json:"gateway"` // an address in Subnet; never handed to a VM
	MTU     int         `json:"mtu"`
	// Bridge is the Linux bridge each host attaches the network's VMs to.
	Bridge string `json:"bridge"`
	// Ports counts the VM NICs on the network (filled in on read).
	Ports     int       `json:"ports"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateNetworkRequest is the body of POST /v1/networks.
type CreateNetworkRequest struct {
	Name   string `json:"name"`
	Subnet string `json:"subnet"`
	// Gateway defaults to the subnet's first address.
	Gateway string `json:"gateway,omitempty"`
	// MTU defaults to DefaultMTU.
	MTU int `json:"mtu,omitempty"`
}

// Port is one VM NIC on a network: the controller hands out its MAC
// (locally administered, unique in the cluster) and its IPv4 address
// (unique in the network); both stay with the VM across every move and
// are freed when the VM is deleted.
type Port struct {
	ID      string `json:"id"`
	Network string `json:"network"`
	VMID    string `json:"vm_id"`
	MAC     string `json:"mac"`
	IP      string `json:"ip"`
	// PortSecurity: the VM may send only from this MAC and IP (its host
	// drops anything else, ARP spoofing included). On unless the port was
	// created with no_port_security, for appliances that route.
	PortSecurity bool      `json:"port_security"`
	CreatedAt    time.Time `json:"created_at"`
}

// NICRequest asks for one NIC in CreateVMRequest.Networks.
type NICRequest struct {
	Network string `json:"network"`
	// IP asks for this address; empty hands out the lowest free one.
	IP             string `json:"ip,omitempty"`
	NoPortSecurity bool   `json:"no_port_security,omitempty"`
}

// MaxUserDataBytes bounds a VM's user-data (cloud-init's own limit for a
// config drive is larger, but a seed that big is a mistake here).
const MaxUserDataBytes = 64 << 10

// MaxNICs bounds the NICs of one VM.
const MaxNICs = 8

// String is "network" or "network,ip=A" (the CLI's --network syntax).
func (r NICRequest) String() string {
	s := r.Network
	if r.IP != "" {
		s += ",ip=" + r.IP
	}
	if r.NoPortSecurity {
		s += ",no-port-security"
	}
	return s
}

// CreateNetwork makes a network.
func (c *Client) CreateNetwork(ctx context.Context, req CreateNetworkRequest) (Network, error) {
	var n Network
	err := c.Do(ctx, http.MethodPost, "/v1/networks", req, &n)
	return n, err
}

// Networks lists networks.
func (c *Client) Networks(ctx context.Context) ([]Network, error) {
	var ns []Network
	err := c.Do(ctx, http.MethodGet, "/v1/networks", nil, &ns)
	return ns, err
}

// Network returns one network.
func (c *Client) Network(ctx context.Context, name string) (Network, error) {
	var n Network
	err := c.Do(ctx, http.MethodGet, "/v1/networks/"+url.PathEscape(name), nil, &n)
	return n, err
}

// DeleteNetwork removes a network no VM uses (409 names the VMs that do).
func (c *Client) DeleteNetwork(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/networks/"+url.PathEscape(name), nil, nil)
}
