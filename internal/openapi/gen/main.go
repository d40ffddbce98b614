// Command gen writes what go generate makes for the OpenAPI document
// (make openapi runs both):
//
//	gen -descriptions FILE DIR   the doc comments of package api in DIR,
//	                             for package openapi to embed
//	gen FILE                     the controller's document (docs/openapi.json)
package main

import (
	"fmt"
	"os"

	"github.com/godwit/godwit/internal/controller"
	"github.com/godwit/godwit/internal/openapi"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 4 && os.Args[1] == "-descriptions":
		var d openapi.Descriptions
		if d, err = openapi.ReadDescriptions(os.Args[3]); err == nil {
			err = openapi.WriteDescriptions(os.Args[2], d)
		}
	case len(os.Args) == 2:
		var doc []byte
		if doc, err = controller.OpenAPI(); err == nil {
			err = os.WriteFile(os.Args[1], doc, 0o644)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: gen -descriptions FILE DIR | gen FILE")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
