package controller

import (
	"maps"
	"slices"
)

// PolicyRoutes lists the routes of the policy table, sorted.
func PolicyRoutes() []string { return slices.Sorted(maps.Keys(policy)) }
