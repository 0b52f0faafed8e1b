//go:build !race

package cluster

import "testing"

// TestCerts is a certificate authority of a test, for the tests of the
// cluster_test package (which start real processes).
type TestCerts struct{ ca *tlsTestCA }

// NewTestCerts makes a CA named name with its files in dir.
func NewTestCerts(t *testing.T, dir, name string) *TestCerts {
	return &TestCerts{ca: tlsTestNewCA(t, dir, name)}
}

// Node issues a node certificate (IP SAN 127.0.0.1, client and server use)
// and returns its files.
func (c *TestCerts) Node(t *testing.T, name string) *TLSFiles {
	return c.ca.node(t, name)
}
