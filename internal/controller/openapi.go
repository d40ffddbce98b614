package controller

import (
	"net/http"
	"sync"

	"github.com/godwit/godwit/api"
	"github.com/godwit/godwit/internal/openapi"
)

// docs/openapi.json is this document; a test fails when it is stale.
//go:generate go run ../openapi/gen ../../docs/openapi.json

// OpenAPI returns the OpenAPI document of the controller's public
// routes: api.Routes, with who may call each from the policy table.
// It is made once: it depends on nothing but the code.
func OpenAPI() ([]byte, error) { return openAPIDoc() }

var openAPIDoc = sync.OnceValues(func() ([]byte, error) {
	access := map[string]openapi.Access{}
	for pattern, rl := range policy {
		access[pattern] = openapi.Access{Role: rl.access.String(), Note: scopeNotes[rl.scope]}
	}
	return openapi.Generate(api.Routes, openapi.Options{Access: access, Enums: api.Enumerations(), Descriptions: openapi.Embedded()})
})

// scopeNotes say, in the document, how a member is kept to its project.
var scopeNotes = map[scope]string{
	vmPath:        "a member only on its project's VMs; another project's reads as not found",
	migrationPath: "a member only on its project's VMs' migrations; another project's reads as not found",
	intentPath:    "a member only on intents about its project's VMs; another project's reads as not found",
	ownIntentPath: "a member only on its project's resizes and rebuilds",
	projectPath:   "a member only on its own project",
	listed:        "a member's list holds its project's only",
	bodyProject:   "a member only in its own project",
}

// openAPI serves the document (GET /openapi.json).
func (c *Controller) openAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := OpenAPI()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", api.MediaJSON)
	_, _ = w.Write(doc)
}
