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

// PolicyPage says a route of the policy table serves the dashboard's
// files, not the REST API.
func PolicyPage(pattern string) bool { return policy[pattern].page }
