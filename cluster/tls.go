package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// TLSFiles names a node's certificate, key and the cluster's CA (PEM files).
//
// The certificate serves both ends of every connection (the node's server and
// its client to each peer), so its extended key usage must allow server and
// client authentication, and it needs a SAN for the host the node advertises
// (an IP SAN when that is an IP address): peers check it against the host
// they dial. CertFile may hold intermediates after the leaf.
type TLSFiles struct{ CertFile, KeyFile, CAFile string }

// Transport liveness settings (see RemoteOptions).
const (
	// keepaliveServerTime is how often the server pings an idle client
	// connection; 1s is the smallest grpc-go accepts from a server.
	keepaliveServerTime = time.Second
	// keepaliveClientTime is how often a client pings an idle connection:
	// grpc-go's floor (it raises anything shorter to 10s), so on the
	// client side a silent peer is found by keepaliveTimeout below.
	keepaliveClientTime = 10 * time.Second
	// keepaliveTimeout is how long a ping may go unanswered. grpc-go also
	// sets it as the connection's TCP_USER_TIMEOUT on Linux, so data a dead
	// peer does not acknowledge (such as the membership probes every
	// probe interval) closes the connection after about this long.
	keepaliveTimeout = time.Second
	// keepaliveMinClientPing is the least interval at which a server lets a
	// client ping before answering GOAWAY "too_many_pings"; it must stay
	// under keepaliveClientTime.
	keepaliveMinClientPing = 5 * time.Second
	// remoteConnectAttempts bounds the tries of protoactor's endpoint writer
	// to connect to a peer. Each failed try blocks that writer for 2s, with
	// everything queued to the peer behind it; after the last one the
	// endpoint is dropped and the next message connects afresh. One try
	// lets a peer that restarts on the same address be reached again
	// within seconds (0 would make the writer never connect).
	remoteConnectAttempts = 1
)

// RemoteOptions returns the protoactor remote options for the cluster port:
// with tls set, mutual TLS 1.3 (the server requires and verifies a client
// certificate signed by the CA; the client verifies the server's against the
// CA), plus gRPC keepalives so a dead peer is noticed within about a second;
// without tls, insecure transport (and the caller logs that the port is
// unauthenticated).
//
// Keepalive, in detail: the server pings idle connections every second and
// each side closes a connection whose pings or data go unacknowledged for a
// second (grpc-go sets TCP_USER_TIMEOUT from the keepalive timeout); the
// client's own idle pings are at grpc-go's floor of 10s. The options also
// set protoactor's remote MaxRetryCount to 1, so a peer that went away and
// comes back on the same address is reconnected quickly.
//
// The files are read once, here: rotating certificates means restarting the
// node. An error says which file is wrong, and also reports a certificate
// that the CA does not verify for both client and server use, which every
// peer would reject.
func RemoteOptions(files *TLSFiles) ([]remote.ConfigOption, error) {
	server := []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveServerTime, Timeout: keepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinClientPing, PermitWithoutStream: true}),
	}
	// remote.WithDialOptions replaces protoactor's default (insecure)
	// credentials, so the dial options always carry credentials.
	dial := []grpc.DialOption{
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepaliveClientTime, Timeout: keepaliveTimeout, PermitWithoutStream: true}),
	}
	if files == nil {
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		serverTLS, clientTLS, err := mutualTLS(files)
		if err != nil {
			return nil, err
		}
		server = append(server, grpc.Creds(credentials.NewTLS(serverTLS)))
		dial = append(dial, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
	}
	return []remote.ConfigOption{
		remote.WithServerOptions(server...),
		remote.WithDialOptions(dial...),
		func(c *remote.Config) { c.MaxRetryCount = remoteConnectAttempts },
	}, nil
}

// mutualTLS loads the files and returns the server and client TLS configs.
// The client leaves ServerName empty: gRPC fills it with the dialled host,
// which is the peer's advertised address.
func mutualTLS(files *TLSFiles) (server, client *tls.Config, err error) {
	if files.CertFile == "" || files.KeyFile == "" || files.CAFile == "" {
		return nil, nil, errors.New("cluster TLS: certificate, key and CA files are all required")
	}
	cert, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster TLS: load key pair %s, %s: %w", files.CertFile, files.KeyFile, err)
	}
	caPEM, err := os.ReadFile(files.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster TLS: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("cluster TLS: CA file %s holds no PEM certificate", files.CAFile)
	}
	if err := verifyNodeCert(cert, pool); err != nil {
		return nil, nil, fmt.Errorf("cluster TLS: certificate %s: %w", files.CertFile, err)
	}
	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
	}
	return server, client, nil
}

// verifyNodeCert checks that the CA verifies cert for server and for client
// authentication, as each peer will.
func verifyNodeCert(cert tls.Certificate, roots *x509.CertPool) error {
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse: %w", err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("parse intermediate: %w", err)
		}
		inter.AddCert(c)
	}
	for _, use := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{use}}); err != nil {
			return fmt.Errorf("not valid under the cluster CA for %s: %w", keyUsageName(use), err)
		}
	}
	return nil
}

func keyUsageName(u x509.ExtKeyUsage) string {
	if u == x509.ExtKeyUsageServerAuth {
		return "server authentication"
	}
	return "client authentication"
}
