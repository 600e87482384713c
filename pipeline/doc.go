// Package pipeline is egov-bridge's public surface for connectors: the record and
// event shapes, the Source and Sink interfaces, error classes, and the registry that
// connectors add themselves to. It knows nothing about any particular agency system.
package pipeline
