// Package egovbridge holds the files the binary carries with it: the demo config,
// the province's mappings and the demo agency's seed data, so that the demo runs
// from the binary alone.
package egovbridge

import "embed"

// Files is the embedded tree: configs/demo.yaml with the demo's regulation and
// the crosswalk it names, mappings/, testdata/demo/.
//
//go:embed configs/demo.yaml configs/regulation/demo.yaml configs/places.example.csv mappings testdata/demo
var Files embed.FS
