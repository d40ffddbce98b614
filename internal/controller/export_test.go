package controller

import (
	"maps"
	"slices"
)

// PolicyRoutes lists the routes of the policy table, sorted.
func PolicyRoutes() []string { return slices.Sorted(maps.Keys(policy)) }

// PolicyAccess is who may call a route of the policy table: anyone,
// member, admin or host; "" for a route not in it.
func PolicyAccess(pattern string) string {
	rl, ok := policy[pattern]
	if !ok {
		return ""
	}
	return rl.access.String()
}

// PolicyNotREST says a route of the policy table serves the dashboard's
// files or OpenStack's APIs, not godwit's REST API.
func PolicyNotREST(pattern string) bool { return policy[pattern].page || policy[pattern].openstack }
