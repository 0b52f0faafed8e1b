//go:build !race

// Built only without -race: these tests run real protoactor clusters, whose
// cluster and remote code trips the race detector (known upstream races).

package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// tlsTestCA is a certificate authority made for one test.
type tlsTestCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	caFile string
	dir    string
	serial int64
}

func tlsTestNewKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func tlsTestWritePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsTestNewCA makes a CA and writes its certificate to dir/name-ca.pem.
func tlsTestNewCA(t *testing.T, dir, name string) *tlsTestCA {
	t.Helper()
	key := tlsTestNewKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &tlsTestCA{cert: cert, key: key, caFile: filepath.Join(dir, name+"-ca.pem"), dir: dir, serial: 1}
	tlsTestWritePEM(t, ca.caFile, "CERTIFICATE", der)
	return ca
}

// node issues a certificate for a local test node (IP SAN 127.0.0.1) with
// the given extended key usages and returns its files, naming this CA.
func (ca *tlsTestCA) node(t *testing.T, name string, usages ...x509.ExtKeyUsage) *TLSFiles {
	t.Helper()
	if len(usages) == 0 {
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	ca.serial++
	key := tlsTestNewKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &TLSFiles{
		CertFile: filepath.Join(ca.dir, name+"-cert.pem"),
		KeyFile:  filepath.Join(ca.dir, name+"-key.pem"),
		CAFile:   ca.caFile,
	}
	tlsTestWritePEM(t, f.CertFile, "CERTIFICATE", der)
	tlsTestWritePEM(t, f.KeyFile, "PRIVATE KEY", keyDER)
	return f
}

// tlsTestHandBuilt returns remote options that trust the cluster CA (so the
// intruder accepts the members' servers) but present clientCert, which may be
// nil for none: what a member's server alone must refuse.
func tlsTestHandBuilt(t *testing.T, clusterCA *tlsTestCA, clientCert *TLSFiles) []remote.ConfigOption {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(clusterCA.cert)
	client := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool}
	var server []grpc.ServerOption
	if clientCert != nil {
		cert, err := tls.LoadX509KeyPair(clientCert.CertFile, clientCert.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		client.Certificates = []tls.Certificate{cert}
		server = append(server, grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}})))
	}
	return []remote.ConfigOption{
		remote.WithServerOptions(server...),
		remote.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(client))),
		func(c *remote.Config) { c.MaxRetryCount = 1 },
	}
}

// tlsTestCountingActor counts the messages it gets and answers each.
func tlsTestCountingActor(n *atomic.Int64) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		if s, ok := ctx.Message().(*wrapperspb.StringValue); ok {
			n.Add(1)
			ctx.Respond(s)
		}
	})
}

func TestMutualTLSMembersSeeEachOtherAndShutOutOthers(t *testing.T) {
	dir := t.TempDir()
	clusterCA := tlsTestNewCA(t, dir, "cluster")
	otherCA := tlsTestNewCA(t, dir, "other")

	addrs := smFreeAddrs(t, 6)
	goodAddrs, badAddrs := addrs[:2], addrs[2:]
	var good []*smNode
	for i, a := range goodAddrs {
		opts, err := RemoteOptions(clusterCA.node(t, "member"+string(rune('a'+i))))
		if err != nil {
			t.Fatalf("remote options: %v", err)
		}
		good = append(good, smStart(t, a, addrs, opts)) // the members probe the intruders too
	}
	counted := make([]*atomic.Int64, len(good))
	for i, n := range good {
		counted[i] = new(atomic.Int64)
		if _, err := n.sys.Root.SpawnNamed(tlsTestCountingActor(counted[i]), "tls-counter"); err != nil {
			t.Fatal(err)
		}
	}

	// The members see each other and talk through the cluster.
	wantGood := slices.Sorted(slices.Values(goodAddrs))
	for _, n := range good {
		smEventually(t, 10*time.Second, n.addr+" sees both members", func() bool {
			return slices.Equal(n.memberAddrs(), wantGood)
		})
	}
	for i := range 4 { // several identities: some live on the other member
		if _, err := good[0].c.Request("id"+string(rune('0'+i)), smEchoKind, wrapperspb.String("hi")); err != nil {
			t.Fatalf("request over mutual TLS: %v", err)
		}
	}
	res, err := good[0].sys.Root.RequestFuture(actor.NewPID(good[1].addr, "tls-counter"), wrapperspb.String("hi"), 5*time.Second).Result()
	if err != nil || res.(*wrapperspb.StringValue).GetValue() != "hi" {
		t.Fatalf("member to member request: %v, %v", res, err)
	}
	if counted[1].Load() != 1 {
		t.Fatalf("counter got %d messages, want 1", counted[1].Load())
	}
	counted[1].Store(0)

	otherOpts, err := RemoteOptions(otherCA.node(t, "stranger"))
	if err != nil {
		t.Fatal(err)
	}
	plainOpts, err := RemoteOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	intruders := []struct {
		name string
		opts []remote.ConfigOption
	}{
		{"certificate of another CA", otherOpts},
		{"no TLS", plainOpts},
		// These trust the cluster CA, so only the members' servers can
		// refuse them: the client certificate is required and verified.
		{"another CA's client certificate, trusting the cluster CA", tlsTestHandBuilt(t, clusterCA, otherCA.node(t, "forger"))},
		{"no client certificate, trusting the cluster CA", tlsTestHandBuilt(t, clusterCA, nil)},
	}
	var bad []*smNode
	for i, in := range intruders {
		bad = append(bad, smStart(t, badAddrs[i], addrs, in.opts))
	}
	probing := time.Now()
	// Every intruder asks an actor of every member, all at once.
	type ask struct {
		intruder, member int
		f                *actor.Future
	}
	var asks []ask
	for i, n := range bad {
		for j, g := range good {
			f := n.sys.Root.RequestFuture(actor.NewPID(g.addr, "tls-counter"), wrapperspb.String("let me in"), 2*time.Second)
			asks = append(asks, ask{i, j, f})
		}
	}
	for _, a := range asks {
		if res, err := a.f.Result(); err == nil {
			t.Errorf("%s: a request to member %d got an answer: %v", intruders[a.intruder].name, a.member, res)
		}
	}
	// Let the members probe the intruders for a drop period: an accepted
	// intruder would be listed after its first answer.
	time.Sleep(good[0].prov.dropAfter - time.Since(probing))

	for i, in := range intruders {
		for j, g := range good {
			if g.everListed(bad[i].addr) {
				t.Errorf("%s: member %d listed the intruder", in.name, j)
			}
		}
		if got := bad[i].memberAddrs(); !slices.Equal(got, []string{bad[i].addr}) {
			t.Errorf("%s: the intruder sees %v, want only itself", in.name, got)
		}
	}
	for j, g := range good {
		if got := g.memberAddrs(); !slices.Equal(got, wantGood) {
			t.Errorf("member %d sees %v, want %v", j, got, wantGood)
		}
		if c := counted[j].Load(); c != 0 {
			t.Errorf("member %d's actor got %d messages from intruders", j, c)
		}
	}
	smStopAll(t, append(good, bad...)...)
}

func TestRemoteOptionsRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := tlsTestNewCA(t, dir, "cluster")
	other := tlsTestNewCA(t, dir, "other")
	good := ca.node(t, "good")
	foreign := other.node(t, "foreign")
	serverOnly := ca.node(t, "server-only", x509.ExtKeyUsageServerAuth)
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := RemoteOptions(good); err != nil {
		t.Fatalf("good files: %v", err)
	}
	for _, tc := range []struct {
		name  string
		files TLSFiles
		want  string // in the error
	}{
		{"missing CA", TLSFiles{good.CertFile, good.KeyFile, ""}, "all required"},
		{"unreadable certificate", TLSFiles{filepath.Join(dir, "nope.pem"), good.KeyFile, good.CAFile}, "nope.pem"},
		{"key of another certificate", TLSFiles{good.CertFile, foreign.KeyFile, good.CAFile}, "key pair"},
		{"CA without certificates", TLSFiles{good.CertFile, good.KeyFile, empty}, "no PEM certificate"},
		{"certificate of another CA", TLSFiles{foreign.CertFile, foreign.KeyFile, good.CAFile}, "not valid under the cluster CA"},
		{"certificate for servers only", TLSFiles{serverOnly.CertFile, serverOnly.KeyFile, good.CAFile}, "client authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RemoteOptions(&tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
