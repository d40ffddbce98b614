// Command gen writes the controller's OpenAPI document to the file
// named by its argument: go generate ./internal/controller/ (make
// openapi) runs it to refresh docs/openapi.json.
package main

import (
	"fmt"
	"os"

	"github.com/godwit/godwit/internal/controller"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen FILE")
		os.Exit(2)
	}
	doc, err := controller.OpenAPI()
	if err == nil {
		err = os.WriteFile(os.Args[1], doc, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
