package httpapi

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// npmClientDir holds the Node script and the package.json that pins
// durable-functions; `npm ci` there installs it (.ci/run does).
const npmClientDir = "testdata/npmclient"

// TestNpmDurableClientDrivesTheAPI runs the durable-functions npm package's
// own DurableClient against the API: start, status, raise event, suspend,
// resume, terminate, rewind, list with paging, purge, and signalling and
// reading an entity (the test app's Counter).
// Both ways the client can be configured are driven: the management URL
// templates (carrying an API key), and an rpcBaseUrl (which cannot carry one).
func TestNpmDurableClientDrivesTheAPI(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(npmClientDir, "node_modules", "durable-functions", "package.json"))
	}
	if err != nil {
		msg := "the durable-functions npm package is not installed (run `npm ci` in httpapi/" + npmClientDir + "; .ci/run does): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, tc := range []struct {
		name string
		key  string
		rpc  bool
	}{
		{"management URL templates with an API key", "npm-key", false},
		{"rpcBaseUrl", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{APIKey: tc.key, PageSize: 2})
			cd := e.api.ClientDataFor(e.srv.URL)
			data := map[string]any{
				"taskHubName":                   cd.TaskHubName,
				"creationUrls":                  cd.CreationURLs,
				"managementUrls":                cd.ManagementURLs,
				"baseUrl":                       cd.BaseURL,
				"requiredQueryStringParameters": cd.RequiredQueryStringParameters,
			}
			tag := "tmpl"
			if tc.rpc {
				data["rpcBaseUrl"] = e.srv.URL + RPCBase + "/"
				tag = "rpc"
			}
			b, err := json.Marshal(data)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "client.js")
			cmd.Dir = npmClientDir
			cmd.Env = append(os.Environ(), "DURABLE_CLIENT_DATA="+string(b), "DURABLE_TAG="+tag)
			out, err := cmd.CombinedOutput()
			t.Logf("node client.js:\n%s", out)
			if err != nil || !strings.Contains(string(out), "ALL OK") {
				t.Fatalf("the npm client failed: %v", err)
			}
		})
	}
}
