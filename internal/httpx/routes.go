package httpx

import (
	"net/http"
	"regexp"
	"slices"
)

// PathRules maps a path wildcard's name ("id" of /v1/vms/{id}) to the
// check its value must pass.
type PathRules map[string]func(string) error

// Routes is a ServeMux whose handlers see only path values that passed
// their wildcard's rule: a value that fails it is answered with the
// rule's error (400 for errs.Invalid) before the handler runs. A server
// whose path values name files registers every route here, so none can
// forget the check.
type Routes struct {
	mux      *http.ServeMux
	rules    PathRules
	patterns []string
}

// NewRoutes returns an empty set of routes checked by rules.
func NewRoutes(rules PathRules) *Routes {
	return &Routes{mux: http.NewServeMux(), rules: rules}
}

var wildcardRE = regexp.MustCompile(`\{([^}.]+)(?:\.\.\.)?\}`)

// HandleFunc registers h for pattern (http.ServeMux's syntax), behind
// the rules of the pattern's wildcards.
func (rt *Routes) HandleFunc(pattern string, h http.HandlerFunc) {
	rt.patterns = append(rt.patterns, pattern)
	var checks []string
	for _, m := range wildcardRE.FindAllStringSubmatch(pattern, -1) {
		if _, ok := rt.rules[m[1]]; ok {
			checks = append(checks, m[1])
		}
	}
	if len(checks) == 0 {
		rt.mux.HandleFunc(pattern, h)
		return
	}
	rt.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		for _, name := range checks {
			if err := rt.rules[name](r.PathValue(name)); err != nil {
				Error(w, r, nil, err)
				return
			}
		}
		h(w, r)
	})
}

// Patterns lists the registered patterns, in order (for tests that try
// every route).
func (rt *Routes) Patterns() []string { return slices.Clone(rt.patterns) }

// Handler is the routes behind Mux.
func (rt *Routes) Handler() http.Handler { return Mux(rt.mux) }
