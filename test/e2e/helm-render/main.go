// helm-render: a small re-implementation of `helm template`, for meshguard's end-to-end tests.
//
// Why this exists: the chart in charts/meshguard must be rendered and its output given to a real
// API server, but neither npm nor Debian packages a `helm` binary, and the test machines reach
// only the npm registry and Debian's apt repositories (no GitHub, no Go module proxy). Debian
// does package Go and the libraries Helm's template engine is made of, so this program rebuilds
// that engine from them, mirroring Helm 3 (pkg/engine, pkg/chartutil, pkg/releaseutil,
// pkg/action/install.go, cmd/helm/template.go):
//
//   - Go's text/template with Option("missingkey=zero"), "<no value>" removed from the output
//   - sprig v3's TxtFuncMap without env/expandenv, plus Helm's toYaml, mustToYaml, toYamlPretty,
//     fromYaml, fromYamlArray, toJson, mustToJson, fromJson, fromJsonArray, include (with
//     Helm's recursion limit), tpl, required (HELM_ERR_START/END message extraction), and lookup
//     (always an empty map, as in `helm template`)
//   - YAML through sigs.k8s.io/yaml (JSON round trip, keys sorted; numbers become float64,
//     exactly Helm's behaviour), toYaml's trailing newline trimmed
//   - .Values (values.yaml coalesced with -f files and --set, null deletes a default),
//     .Release (Name, Namespace, IsInstall=true, IsUpgrade=false, Revision=1, Service="Helm"),
//     .Chart (Chart.yaml's fields, capitalised: .Chart.AppVersion), .Files (Get, GetBytes, Lines),
//     .Capabilities (KubeVersion, APIVersions.Has, HelmVersion), .Template (Name, BasePath)
//   - values validated against values.schema.json with xeipuuv/gojsonschema (the library Helm 3
//     used for this until 3.17), with Helm's error text
//   - Chart.yaml's kubeVersion checked against the Kubernetes version
//   - templates parsed and executed in Helm's order, partials (_*) and NOTES.txt not emitted,
//     documents split on `---`, empty ones dropped, sorted by kind in Helm's install order
//     (stable, unknown kinds last, alphabetically), hooks (helm.sh/hook) after the manifests,
//     each printed as "---\n# Source: CHART/templates/FILE\n...".
//
// Capabilities: without --kubeconfig, like `helm template`: Kubernetes --kube-version (default
// v1.30.0) and a built-in list of API versions (an approximation of client-go's scheme, which
// is what Helm uses) plus --api-versions. With --kubeconfig, like `helm install`/`template
// --validate`: the version and the API versions come from the live server's discovery
// (Helm's GetVersionSet: every group/version and every group/version/Kind), plus --api-versions.
//
// Not covered (the chart does not use them; a chart that does fails loudly rather than rendering
// something different): subcharts and dependencies (charts/, Chart.yaml dependencies), crds/,
// library charts, .helmignore (refused if present; Helm's default of ignoring dotfiles in
// templates/ is applied), values templates, --set list/index syntax and escapes, --set-string,
// --set-file, --show-only, --output-dir, toToml/fromToml, .Files.Glob/AsConfig/AsSecrets, a real
// lookup against the cluster, post-renderers, strict mode, and lint mode.
//
// Usage:
//
//	helm-render RELEASE CHART_DIR [--namespace NS] [-f VALUES]... [--set K=V[,K=V]]...
//	            [--kube-version V] [--api-versions GV[/Kind]]... [--kubeconfig FILE] [--notes]
//
// --notes prints the rendered NOTES.txt instead of the manifests (what `helm install` shows).
//
// Built in GOPATH mode from Debian's packages by test/e2e/provision.sh (GO111MODULE=off,
// GOPATH=/usr/share/gocode); the imports name the directories Debian installs (no /v3).
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	"github.com/mitchellh/copystructure"
	"github.com/xeipuuv/gojsonschema"
	yamlv3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"
)

// ---------------------------------------------------------------------------------------------
// The chart

// Metadata mirrors helm.sh/helm/v3/pkg/chart.Metadata: templates see it as .Chart, with Go's
// capitalised field names.
type Metadata struct {
	Name         string            `json:"name,omitempty"`
	Home         string            `json:"home,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Version      string            `json:"version,omitempty"`
	Description  string            `json:"description,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Maintainers  []*Maintainer     `json:"maintainers,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	APIVersion   string            `json:"apiVersion,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Tags         string            `json:"tags,omitempty"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Dependencies []interface{}     `json:"dependencies,omitempty"`
	Type         string            `json:"type,omitempty"`
}

// Maintainer mirrors chart.Maintainer.
type Maintainer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	URL   string `json:"url,omitempty"`
}

type chartFile struct {
	Name string
	Data []byte
}

type Chart struct {
	Metadata  *Metadata
	Values    map[string]interface{}
	Schema    []byte
	Templates []chartFile
	Files     []chartFile
}

// Files mirrors engine.files: every chart file that is not Chart.yaml, values.yaml,
// values.schema.json or a template.
type Files map[string][]byte

// Get returns a file's contents as a string, "" if there is no such file.
func (f Files) Get(name string) string { return string(f.GetBytes(name)) }

// GetBytes returns a file's contents, nil if there is no such file.
func (f Files) GetBytes(name string) []byte {
	if v, ok := f[name]; ok {
		return v
	}
	return []byte{}
}

// Lines returns a file's lines.
func (f Files) Lines(path string) []string {
	if f == nil || f[path] == nil {
		return []string{}
	}
	s := string(f[path])
	if s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return strings.Split(s, "\n")
}

func loadChart(dir string) (*Chart, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s: only unpacked chart directories are supported", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, ".helmignore")); err == nil {
		return nil, errors.New(".helmignore is not implemented by helm-render")
	}
	c := &Chart{Values: map[string]interface{}{}}
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if fi.IsDir() {
			switch rel {
			case "charts", "crds":
				return fmt.Errorf("%s/: subcharts and CRDs are not implemented by helm-render", rel)
			}
			return nil
		}
		// Helm's default ignore rule: templates/.?*
		if strings.HasPrefix(rel, "templates/") && strings.HasPrefix(path.Base(rel), ".") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case rel == "Chart.yaml":
			c.Metadata = &Metadata{}
			if err := yaml.Unmarshal(data, c.Metadata); err != nil {
				return fmt.Errorf("cannot load Chart.yaml: %w", err)
			}
		case rel == "values.yaml":
			c.Values, err = readValues(data)
			if err != nil {
				return fmt.Errorf("cannot load values.yaml: %w", err)
			}
		case rel == "values.schema.json":
			c.Schema = data
		case rel == "requirements.yaml" || rel == "requirements.lock" || rel == "Chart.lock":
			return fmt.Errorf("%s: dependencies are not implemented by helm-render", rel)
		case strings.HasPrefix(rel, "templates/"):
			c.Templates = append(c.Templates, chartFile{Name: rel, Data: data})
		default:
			c.Files = append(c.Files, chartFile{Name: rel, Data: data})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if c.Metadata == nil {
		return nil, errors.New("Chart.yaml file is missing")
	}
	md := c.Metadata
	if md.APIVersion == "" {
		return nil, errors.New("validation: chart.metadata.apiVersion is required")
	}
	if md.Name == "" {
		return nil, errors.New("validation: chart.metadata.name is required")
	}
	if _, err := semver.NewVersion(md.Version); err != nil {
		return nil, fmt.Errorf("validation: chart.metadata.version %q is invalid", md.Version)
	}
	if md.Type == "library" {
		return nil, errors.New("library charts are not installable")
	}
	if len(md.Dependencies) > 0 {
		return nil, errors.New("chart dependencies are not implemented by helm-render")
	}
	return c, nil
}

// readValues mirrors chartutil.ReadValues: sigs.k8s.io/yaml, so every number is a float64.
func readValues(data []byte) (map[string]interface{}, error) {
	vals := map[string]interface{}{}
	err := yaml.Unmarshal(data, &vals)
	if len(vals) == 0 {
		vals = map[string]interface{}{}
	}
	return vals, err
}

// ---------------------------------------------------------------------------------------------
// Values: -f files and --set merged (values.Options.MergeValues), then coalesced with the
// chart's values.yaml (chartutil.CoalesceValues) and validated against values.schema.json.

func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if v, ok := v.(map[string]interface{}); ok {
			if bv, ok := out[k]; ok {
				if bv, ok := bv.(map[string]interface{}); ok {
					out[k] = mergeMaps(bv, v)
					continue
				}
			}
		}
		out[k] = v
	}
	return out
}

// typedVal mirrors strvals' typing of --set values.
func typedVal(val string) interface{} {
	switch {
	case strings.EqualFold(val, "true"):
		return true
	case strings.EqualFold(val, "false"):
		return false
	case strings.EqualFold(val, "null"):
		return nil
	case val == "0":
		return int64(0)
	}
	if len(val) != 0 && val[0] != '0' {
		if iv, err := strconv.ParseInt(val, 10, 64); err == nil {
			return iv
		}
	}
	return val
}

// applySet handles --set a.b=c,d=e (no list indexes, no escapes: refused).
func applySet(base map[string]interface{}, expr string) error {
	if strings.ContainsAny(expr, "[]\\{}") {
		return fmt.Errorf("--set %q: lists, braces and escapes are not implemented by helm-render (use -f)", expr)
	}
	for _, pair := range strings.Split(expr, ",") {
		eq := strings.IndexByte(pair, '=')
		if eq <= 0 {
			return fmt.Errorf("--set %q: key %q has no value", expr, pair)
		}
		keys := strings.Split(pair[:eq], ".")
		m := base
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]interface{})
			if !ok {
				next = map[string]interface{}{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = typedVal(pair[eq+1:])
	}
	return nil
}

func istable(v interface{}) bool {
	_, ok := v.(map[string]interface{})
	return ok
}

// coalesceValues mirrors chartutil.coalesceValues for a chart without dependencies.
func coalesceValues(chartValues, v map[string]interface{}) {
	for key, val := range chartValues {
		if value, ok := v[key]; ok {
			if value == nil {
				// A null from the user removes the chart's default.
				delete(v, key)
			} else if dest, ok := value.(map[string]interface{}); ok {
				src, ok := val.(map[string]interface{})
				if !ok {
					if val != nil {
						log.Printf("warning: skipped value for %s: Not a table.", key)
					}
				} else {
					coalesceTables(dest, src, key)
				}
			}
		} else {
			v[key] = val
		}
	}
}

// coalesceTables mirrors chartutil.coalesceTablesFullKey (merge=false): dst wins.
func coalesceTables(dst, src map[string]interface{}, prefix string) {
	for key, val := range src {
		fullkey := prefix + "." + key
		if dv, ok := dst[key]; ok && dv == nil {
			delete(dst, key)
		} else if !ok {
			dst[key] = val
		} else if istable(val) {
			if istable(dv) {
				coalesceTables(dv.(map[string]interface{}), val.(map[string]interface{}), fullkey)
			} else {
				log.Printf("warning: cannot overwrite table with non table for %s (%v)", fullkey, val)
			}
		} else if istable(dv) && val != nil {
			log.Printf("warning: destination for %s is a table. Ignoring non-table value (%v)", fullkey, val)
		}
	}
}

func coalesce(c *Chart, user map[string]interface{}) (map[string]interface{}, error) {
	u, err := copystructure.Copy(user)
	if err != nil {
		return nil, err
	}
	d, err := copystructure.Copy(c.Values)
	if err != nil {
		return nil, err
	}
	v := u.(map[string]interface{})
	coalesceValues(d.(map[string]interface{}), v)
	return v, nil
}

// validateSchema mirrors chartutil.ValidateAgainstSingleSchema.
func validateSchema(values map[string]interface{}, schema []byte) (reterr error) {
	defer func() {
		if r := recover(); r != nil {
			reterr = fmt.Errorf("unable to validate schema: %s", r)
		}
	}()
	valuesData, err := yaml.Marshal(values)
	if err != nil {
		return err
	}
	valuesJSON, err := yaml.YAMLToJSON(valuesData)
	if err != nil {
		return err
	}
	if bytes.Equal(valuesJSON, []byte("null")) {
		valuesJSON = []byte("{}")
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(valuesJSON))
	if err != nil {
		return err
	}
	if !result.Valid() {
		var sb strings.Builder
		for _, desc := range result.Errors() {
			sb.WriteString(fmt.Sprintf("- %s\n", desc))
		}
		return errors.New(sb.String())
	}
	return nil
}

// ---------------------------------------------------------------------------------------------
// Capabilities (chartutil.Capabilities)

type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

func (kv *KubeVersion) String() string     { return kv.Version }
func (kv *KubeVersion) GitVersion() string { return kv.Version }

type VersionSet []string

// Has reports whether an API version ("policy/v1") or kind ("policy/v1/PodDisruptionBudget") is
// served.
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

type BuildInfo struct {
	Version      string `json:"version,omitempty"`
	GitCommit    string `json:"git_commit,omitempty"`
	GitTreeState string `json:"git_tree_state,omitempty"`
	GoVersion    string `json:"go_version,omitempty"`
}

type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion BuildInfo
}

func parseKubeVersion(v string) (KubeVersion, error) {
	sv, err := semver.NewVersion(v)
	if err != nil {
		return KubeVersion{}, fmt.Errorf("invalid kube version %q: %w", v, err)
	}
	return KubeVersion{Version: "v" + sv.String(), Major: strconv.FormatUint(sv.Major(), 10), Minor: strconv.FormatUint(sv.Minor(), 10)}, nil
}

// defaultAPIVersions approximates chartutil.DefaultVersionSet (client-go's scheme) for the
// built-in kinds a chart usually needs. CRDs are never in Helm's default set either.
func defaultAPIVersions() VersionSet {
	kinds := map[string][]string{
		"v1":                              {"ConfigMap", "Endpoints", "Event", "LimitRange", "Namespace", "PersistentVolume", "PersistentVolumeClaim", "Pod", "ResourceQuota", "Secret", "Service", "ServiceAccount"},
		"apps/v1":                         {"DaemonSet", "Deployment", "ReplicaSet", "StatefulSet"},
		"batch/v1":                        {"CronJob", "Job"},
		"policy/v1":                       {"PodDisruptionBudget"},
		"rbac.authorization.k8s.io/v1":    {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"},
		"admissionregistration.k8s.io/v1": {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"},
		"networking.k8s.io/v1":            {"Ingress", "IngressClass", "NetworkPolicy"},
		"autoscaling/v1":                  {"HorizontalPodAutoscaler"},
		"autoscaling/v2":                  {"HorizontalPodAutoscaler"},
		"apiextensions.k8s.io/v1":         {"CustomResourceDefinition"},
		"apiregistration.k8s.io/v1":       {"APIService"},
		"scheduling.k8s.io/v1":            {"PriorityClass"},
		"coordination.k8s.io/v1":          {"Lease"},
		"storage.k8s.io/v1":               {"CSIDriver", "StorageClass"},
		"discovery.k8s.io/v1":             {"EndpointSlice"},
		"certificates.k8s.io/v1":          {"CertificateSigningRequest"},
	}
	var set VersionSet
	for gv, ks := range kinds {
		set = append(set, gv)
		for _, k := range ks {
			set = append(set, gv+"/"+k)
		}
	}
	sort.Strings(set)
	return set
}

// ---------------------------------------------------------------------------------------------
// Discovery from a kubeconfig (action.GetVersionSet + the server's /version)

type kubeconfig struct {
	CurrentContext string `json:"current-context"`
	Clusters       []struct {
		Name    string `json:"name"`
		Cluster struct {
			Server                   string `json:"server"`
			CertificateAuthorityData string `json:"certificate-authority-data"`
			CertificateAuthority     string `json:"certificate-authority"`
			InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		Name string `json:"name"`
		User struct {
			Token                 string `json:"token"`
			ClientCertificateData string `json:"client-certificate-data"`
			ClientKeyData         string `json:"client-key-data"`
		} `json:"user"`
	} `json:"users"`
	Contexts []struct {
		Name    string `json:"name"`
		Context struct {
			Cluster string `json:"cluster"`
			User    string `json:"user"`
		} `json:"context"`
	} `json:"contexts"`
}

type apiClient struct {
	server string
	token  string
	http   *http.Client
}

func newAPIClient(file string) (*apiClient, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var clusterName, userName string
	for _, c := range kc.Contexts {
		if c.Name == kc.CurrentContext {
			clusterName, userName = c.Context.Cluster, c.Context.User
		}
	}
	client := &apiClient{}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	found := false
	for _, c := range kc.Clusters {
		if c.Name != clusterName {
			continue
		}
		found = true
		client.server = strings.TrimSuffix(c.Cluster.Server, "/")
		tlsConfig.InsecureSkipVerify = c.Cluster.InsecureSkipTLSVerify
		var ca []byte
		if c.Cluster.CertificateAuthorityData != "" {
			if ca, err = base64.StdEncoding.DecodeString(c.Cluster.CertificateAuthorityData); err != nil {
				return nil, fmt.Errorf("certificate-authority-data: %w", err)
			}
		} else if c.Cluster.CertificateAuthority != "" {
			if ca, err = os.ReadFile(c.Cluster.CertificateAuthority); err != nil {
				return nil, err
			}
		}
		if ca != nil {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(ca) {
				return nil, errors.New("no certificate in the kubeconfig's certificate authority")
			}
			tlsConfig.RootCAs = pool
		}
	}
	if !found {
		return nil, fmt.Errorf("%s: no cluster for the current context %q", file, kc.CurrentContext)
	}
	for _, u := range kc.Users {
		if u.Name != userName {
			continue
		}
		client.token = u.User.Token
		if u.User.ClientCertificateData != "" {
			crt, err1 := base64.StdEncoding.DecodeString(u.User.ClientCertificateData)
			key, err2 := base64.StdEncoding.DecodeString(u.User.ClientKeyData)
			if err1 != nil || err2 != nil {
				return nil, errors.New("client-certificate-data / client-key-data: invalid base64")
			}
			pair, err := tls.X509KeyPair(crt, key)
			if err != nil {
				return nil, err
			}
			tlsConfig.Certificates = []tls.Certificate{pair}
		}
	}
	client.http = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	return client, nil
}

func (c *apiClient) get(p string, into interface{}) error {
	req, err := http.NewRequest(http.MethodGet, c.server+p, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", p, res.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, into)
}

type resourceList struct {
	GroupVersion string `json:"groupVersion"`
	Resources    []struct {
		Kind string `json:"kind"`
	} `json:"resources"`
}

// discover returns the server's version and Helm's version set: every group/version of every
// group (/api, /apis) and every group/version/Kind of the resources each serves.
func discover(c *apiClient) (KubeVersion, VersionSet, error) {
	var info struct {
		Major      string `json:"major"`
		Minor      string `json:"minor"`
		GitVersion string `json:"gitVersion"`
	}
	if err := c.get("/version", &info); err != nil {
		return KubeVersion{}, nil, err
	}
	kv := KubeVersion{Version: info.GitVersion, Major: info.Major, Minor: info.Minor}
	set := map[string]bool{}
	var groupVersions []string
	var core struct {
		Versions []string `json:"versions"`
	}
	if err := c.get("/api", &core); err != nil {
		return kv, nil, err
	}
	groupVersions = append(groupVersions, core.Versions...)
	var groups struct {
		Groups []struct {
			Versions []struct {
				GroupVersion string `json:"groupVersion"`
			} `json:"versions"`
		} `json:"groups"`
	}
	if err := c.get("/apis", &groups); err != nil {
		return kv, nil, err
	}
	for _, g := range groups.Groups {
		for _, v := range g.Versions {
			groupVersions = append(groupVersions, v.GroupVersion)
		}
	}
	// One request per group/version, concurrently (client-go's discovery does the same).
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, gv := range groupVersions {
		set[gv] = true
		p := "/apis/" + gv
		if !strings.Contains(gv, "/") {
			p = "/api/" + gv
		}
		wg.Add(1)
		go func(gv, p string) {
			defer wg.Done()
			var rl resourceList
			if err := c.get(p, &rl); err != nil {
				// discovery.IsGroupDiscoveryFailedError: Helm carries on with what it has.
				log.Printf("warning: discovery of %s failed: %v", gv, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range rl.Resources {
				set[path.Join(rl.GroupVersion, r.Kind)] = true
			}
		}(gv, p)
	}
	wg.Wait()
	var out VersionSet
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return kv, out, nil
}

// ---------------------------------------------------------------------------------------------
// The engine (pkg/engine)

type Values map[string]interface{}

// AsMap is chartutil.Values.AsMap.
func (v Values) AsMap() map[string]interface{} { return v }

type renderable struct {
	tpl      string
	vals     Values
	basePath string
}

const (
	warnStartDelim   = "HELM_ERR_START"
	warnEndDelim     = "HELM_ERR_END"
	recursionMaxNums = 1000
)

var warnRegex = regexp.MustCompile(warnStartDelim + `(.*)` + warnEndDelim)

func warnWrap(warn string) string { return warnStartDelim + warn + warnEndDelim }

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func mustToYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		panic(err)
	}
	return strings.TrimSuffix(string(data), "\n")
}

func toYAMLPretty(v interface{}) string {
	var data bytes.Buffer
	encoder := yamlv3.NewEncoder(&data)
	encoder.SetIndent(2)
	if err := encoder.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(data.String(), "\n")
}

func fromYAML(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(str string) []interface{} {
	a := []interface{}{}
	if err := yaml.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func mustToJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(data)
}

func fromJSON(str string) map[string]interface{} {
	m := make(map[string]interface{})
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(str string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	extra := template.FuncMap{
		"toYaml":        toYAML,
		"mustToYaml":    mustToYAML,
		"toYamlPretty":  toYAMLPretty,
		"fromYaml":      fromYAML,
		"fromYamlArray": fromYAMLArray,
		"toJson":        toJSON,
		"mustToJson":    mustToJSON,
		"fromJson":      fromJSON,
		"fromJsonArray": fromJSONArray,
		// Late-bound in initFunMap.
		"include":  func(string, interface{}) string { return "not implemented" },
		"tpl":      func(string, interface{}) interface{} { return "not implemented" },
		"required": func(string, interface{}) (interface{}, error) { return "not implemented", nil },
		// `helm template` has no cluster connection: lookup finds nothing.
		"lookup": func(string, string, string, string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func initFunMap(t *template.Template, referenceTpls map[string]renderable) {
	f := funcMap()
	includedNames := make(map[string]int)
	f["include"] = func(name string, data interface{}) (string, error) {
		var buf strings.Builder
		if v, ok := includedNames[name]; ok {
			if v > recursionMaxNums {
				return "", fmt.Errorf("rendering template has a nested reference name: %s: unable to execute template", name)
			}
			includedNames[name]++
		} else {
			includedNames[name] = 1
		}
		err := t.ExecuteTemplate(&buf, name, data)
		includedNames[name]--
		return buf.String(), err
	}
	f["tpl"] = func(tpl string, vals Values) (string, error) {
		tv, ok := vals["Template"].(map[string]interface{})
		if !ok {
			return "", fmt.Errorf("cannot retrieve Template.Name from values inside tpl function: %s", tpl)
		}
		name, _ := tv["Name"].(string)
		basePath, _ := tv["BasePath"].(string)
		result, err := renderWithReferences(map[string]renderable{name: {tpl: tpl, vals: vals, basePath: basePath}}, referenceTpls)
		if err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", tpl, err)
		}
		return result[name], nil
	}
	f["required"] = func(warn string, val interface{}) (interface{}, error) {
		if val == nil {
			return val, errors.New(warnWrap(warn))
		} else if s, ok := val.(string); ok && s == "" {
			return val, errors.New(warnWrap(warn))
		}
		return val, nil
	}
	t.Funcs(f)
}

// sortTemplates: deepest paths first, then reverse-alphabetically (Helm's parse and execution
// order, which decides which `required` fails first).
func sortTemplates(tpls map[string]renderable) []string {
	keys := make([]string, 0, len(tpls))
	for k := range tpls {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		ca, cb := strings.Count(a, "/"), strings.Count(b, "/")
		if ca == cb {
			return a > b
		}
		return ca > cb
	})
	return keys
}

func renderWithReferences(tpls, referenceTpls map[string]renderable) (rendered map[string]string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rendering template failed: %v", r)
		}
	}()
	t := template.New("gotpl")
	t.Option("missingkey=zero")
	initFunMap(t, referenceTpls)
	keys := sortTemplates(tpls)
	for _, filename := range keys {
		if _, err := t.New(filename).Parse(tpls[filename].tpl); err != nil {
			return nil, cleanupParseError(filename, err)
		}
	}
	for _, filename := range sortTemplates(referenceTpls) {
		if t.Lookup(filename) == nil {
			if _, err := t.New(filename).Parse(referenceTpls[filename].tpl); err != nil {
				return nil, cleanupParseError(filename, err)
			}
		}
	}
	rendered = make(map[string]string, len(keys))
	for _, filename := range keys {
		if strings.HasPrefix(path.Base(filename), "_") {
			continue
		}
		vals := tpls[filename].vals
		vals["Template"] = map[string]interface{}{"Name": filename, "BasePath": tpls[filename].basePath}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, filename, vals); err != nil {
			return nil, cleanupExecError(filename, err)
		}
		rendered[filename] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return rendered, nil
}

func cleanupParseError(filename string, err error) error {
	tokens := strings.Split(err.Error(), ": ")
	if len(tokens) == 1 {
		return fmt.Errorf("parse error in (%s): %s", filename, err)
	}
	return fmt.Errorf("parse error at (%s): %s", tokens[1], tokens[len(tokens)-1])
}

func cleanupExecError(filename string, err error) error {
	var execErr template.ExecError
	if !errors.As(err, &execErr) {
		return err
	}
	tokens := strings.SplitN(err.Error(), ": ", 3)
	if len(tokens) != 3 {
		return fmt.Errorf("execution error in (%s): %s", filename, err)
	}
	if parts := warnRegex.FindStringSubmatch(tokens[2]); len(parts) >= 2 {
		return fmt.Errorf("execution error at (%s): %s", tokens[1], parts[1])
	}
	return err
}

// ---------------------------------------------------------------------------------------------
// Manifests (pkg/releaseutil)

var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
	"PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList",
	"RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController",
	"ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
	"IngressClass", "Ingress", "APIService",
}

type simpleHead struct {
	Version  string `json:"apiVersion"`
	Kind     string `json:"kind,omitempty"`
	Metadata *struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata,omitempty"`
}

type manifest struct {
	Name    string
	Content string
	Head    simpleHead
}

var sep = regexp.MustCompile("(?:^|\\s*\n)---\\s*")

func splitManifests(bigFile string) []string {
	var res []string
	for _, d := range sep.Split(strings.TrimSpace(bigFile), -1) {
		if d == "" {
			continue
		}
		res = append(res, strings.TrimSpace(d))
	}
	return res
}

func lessByKind(kindA, kindB string) bool {
	ordering := make(map[string]int, len(installOrder))
	for v, k := range installOrder {
		ordering[k] = v
	}
	first, aok := ordering[kindA]
	second, bok := ordering[kindB]
	if !aok && !bok {
		if kindA != kindB {
			return kindA < kindB
		}
		return first < second
	}
	if !aok {
		return false
	}
	if !bok {
		return true
	}
	return first < second
}

func sortManifests(files map[string]string) (hooks, generic []manifest, err error) {
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		content := files[p]
		if strings.HasPrefix(path.Base(p), "_") || strings.TrimSpace(content) == "" {
			continue
		}
		for _, m := range splitManifests(content) {
			var head simpleHead
			if err := yaml.Unmarshal([]byte(m), &head); err != nil {
				return nil, nil, fmt.Errorf("YAML parse error on %s: %w", p, err)
			}
			entry := manifest{Name: p, Content: m, Head: head}
			if head.Metadata != nil && head.Metadata.Annotations["helm.sh/hook"] != "" {
				hooks = append(hooks, entry)
			} else {
				generic = append(generic, entry)
			}
		}
	}
	byKind := func(ms []manifest) {
		sort.SliceStable(ms, func(i, j int) bool { return lessByKind(ms[i].Head.Kind, ms[j].Head.Kind) })
	}
	byKind(hooks)
	byKind(generic)
	return hooks, generic, nil
}

// ---------------------------------------------------------------------------------------------
// main

type multiFlag []string

func main() {
	log.SetFlags(0)
	log.SetPrefix("")
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s\n", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	var positional, valueFiles, sets, apiVersions multiFlag
	namespace, kubeVersion, kubeconfigPath := "default", "", ""
	notes := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			positional = append(positional, a)
			continue
		}
		if a == "--notes" {
			notes = true
			continue
		}
		if a == "-h" || a == "--help" {
			fmt.Fprintln(out, "usage: helm-render RELEASE CHART_DIR [--namespace NS] [-f VALUES]... [--set K=V]... [--kube-version V] [--api-versions GV]... [--kubeconfig FILE] [--notes]")
			return nil
		}
		name, v := a, ""
		if eq := strings.IndexByte(a, '='); eq > 0 {
			name, v = a[:eq], a[eq+1:]
		} else {
			if i+1 >= len(args) {
				return fmt.Errorf("flag needs an argument: %s", name)
			}
			i++
			v = args[i]
		}
		switch name {
		case "-n", "--namespace":
			namespace = v
		case "-f", "--values":
			valueFiles = append(valueFiles, strings.Split(v, ",")...)
		case "--set":
			sets = append(sets, v)
		case "--kube-version":
			kubeVersion = v
		case "-a", "--api-versions":
			apiVersions = append(apiVersions, strings.Split(v, ",")...)
		case "--kubeconfig":
			kubeconfigPath = v
		default:
			return fmt.Errorf("unknown flag: %s", name)
		}
	}
	if len(positional) != 2 {
		return fmt.Errorf("expected RELEASE and CHART_DIR, got %d arguments", len(positional))
	}
	releaseName, chartDir := positional[0], positional[1]

	c, err := loadChart(chartDir)
	if err != nil {
		return err
	}

	user := map[string]interface{}{}
	for _, f := range valueFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		current := map[string]interface{}{}
		if err := yaml.Unmarshal(data, &current); err != nil {
			return fmt.Errorf("failed to parse %s: %w", f, err)
		}
		user = mergeMaps(user, current)
	}
	for _, s := range sets {
		if err := applySet(user, s); err != nil {
			return fmt.Errorf("failed parsing --set data: %w", err)
		}
	}

	caps := &Capabilities{HelmVersion: BuildInfo{Version: "v3.14.0+helm-render", GoVersion: "go1.19"}}
	if kubeconfigPath != "" {
		client, err := newAPIClient(kubeconfigPath)
		if err != nil {
			return err
		}
		kv, set, err := discover(client)
		if err != nil {
			return fmt.Errorf("could not get apiVersions from Kubernetes: %w", err)
		}
		caps.KubeVersion, caps.APIVersions = kv, set
		if kubeVersion != "" {
			return errors.New("--kube-version and --kubeconfig exclude each other")
		}
	} else {
		if kubeVersion == "" {
			kubeVersion = "v1.30.0"
		}
		if caps.KubeVersion, err = parseKubeVersion(kubeVersion); err != nil {
			return err
		}
		caps.APIVersions = defaultAPIVersions()
	}
	caps.APIVersions = append(caps.APIVersions, apiVersions...)

	// action.Install: chartutil.ToRenderValues (coalesce, schema), then renderResources checks
	// the chart's kubeVersion constraint.
	vals, err := coalesce(c, user)
	if err != nil {
		return err
	}
	if c.Schema != nil {
		if err := validateSchema(vals, c.Schema); err != nil {
			return fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n%s", c.Metadata.Name, err.Error())
		}
	}

	if c.Metadata.KubeVersion != "" {
		ok := false
		if sv, err := semver.NewVersion(caps.KubeVersion.String()); err == nil {
			if constraint, err := semver.NewConstraint(c.Metadata.KubeVersion); err == nil {
				ok = constraint.Check(sv)
			}
		}
		if !ok {
			return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c.Metadata.KubeVersion, caps.KubeVersion.String())
		}
	}
	files := Files{}
	for _, f := range c.Files {
		files[f.Name] = f.Data
	}
	top := Values{
		"Chart":        c.Metadata,
		"Capabilities": caps,
		"Release": map[string]interface{}{
			"Name":      releaseName,
			"Namespace": namespace,
			"IsUpgrade": false,
			"IsInstall": true,
			"Revision":  1,
			"Service":   "Helm",
		},
		"Values": Values(vals),
		"Files":  files,
	}
	tpls := map[string]renderable{}
	for _, t := range c.Templates {
		tpls[path.Join(c.Metadata.Name, t.Name)] = renderable{tpl: string(t.Data), vals: top, basePath: path.Join(c.Metadata.Name, "templates")}
	}
	rendered, err := renderWithReferences(tpls, tpls)
	if err != nil {
		return err
	}
	for k, v := range rendered {
		if strings.HasSuffix(k, "NOTES.txt") {
			if notes && k == path.Join(c.Metadata.Name, "templates", "NOTES.txt") {
				_, err := io.WriteString(out, v)
				return err
			}
			delete(rendered, k)
		}
	}
	if notes {
		return nil
	}
	hooks, manifests, err := sortManifests(rendered)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	var result strings.Builder
	fmt.Fprintln(&result, strings.TrimSpace(b.String()))
	for _, m := range hooks {
		fmt.Fprintf(&result, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	_, err = io.WriteString(out, result.String())
	return err
}
