package testfed

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestMergeConfig(t *testing.T) {
	tests := []struct {
		name    string
		overlay map[string]any
		want    map[string]any
		wantErr string
	}{
		{
			name:    "new top-level key",
			overlay: map[string]any{"reload": map[string]any{"debounce": "100ms"}},
			want: map[string]any{
				"policy": map[string]any{"paths": []any{"/repo/rego"}, "data_file": "/d.json"},
				"log":    map[string]any{"level": "debug"},
				"reload": map[string]any{"debounce": "100ms"},
			},
		},
		{
			name: "nested keys merged, lists replaced",
			overlay: map[string]any{"policy": map[string]any{
				"paths":  []any{"/copy/rego"},
				"shadow": map[string]any{"paths": []any{"/candidate"}},
			}},
			want: map[string]any{
				"policy": map[string]any{
					"paths": []any{"/copy/rego"}, "data_file": "/d.json",
					"shadow": map[string]any{"paths": []any{"/candidate"}},
				},
				"log": map[string]any{"level": "debug"},
			},
		},
		{
			name:    "scalar replaced",
			overlay: map[string]any{"log": map[string]any{"level": "info"}},
			want: map[string]any{
				"policy": map[string]any{"paths": []any{"/repo/rego"}, "data_file": "/d.json"},
				"log":    map[string]any{"level": "info"},
			},
		},
		{
			name:    "mapping replaced by a scalar",
			overlay: map[string]any{"policy": "/rego"},
			wantErr: "config overlay: policy replaces a mapping of the harness's configuration with string",
		},
		{
			name:    "nested mapping replaced by a list",
			overlay: map[string]any{"policy": map[string]any{"shadow": []any{"x"}}, "log": map[string]any{"level": []any{}}},
			want: map[string]any{
				"policy": map[string]any{"paths": []any{"/repo/rego"}, "data_file": "/d.json", "shadow": []any{"x"}},
				"log":    map[string]any{"level": []any{}},
			},
		},
		{
			name:    "deep mapping replaced by nil",
			overlay: map[string]any{"log": nil},
			wantErr: "config overlay: log replaces a mapping of the harness's configuration with <nil>",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := map[string]any{
				"policy": map[string]any{"paths": []any{"/repo/rego"}, "data_file": "/d.json"},
				"log":    map[string]any{"level": "debug"},
			}
			err := mergeConfig(base, tt.overlay, "")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("mergeConfig error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("mergeConfig error = %v", err)
			}
			if !reflect.DeepEqual(base, tt.want) {
				t.Errorf("merged = %v\nwant %v", base, tt.want)
			}
		})
	}
}

func TestGatewayWriteFilesOverlay(t *testing.T) {
	spec, gw, _ := newGatewayFixture(t)
	gwDir := spec.dir
	spec.configOverlay = map[string]any{
		"admin":        map[string]any{"token_file": "/tokens.yaml"},
		"decision_log": map[string]any{"rotate": map[string]any{"max_bytes": 65536}},
	}
	if err := gw.writeFiles(spec); err != nil {
		t.Fatalf("writeFiles: %v", err)
	}
	if want := filepath.Join(gwDir, "policy-data.json"); gw.PolicyDataFile != want {
		t.Errorf("PolicyDataFile = %q, want %q", gw.PolicyDataFile, want)
	}
	if gw.AdminURL != "http://127.0.0.1:9448" {
		t.Errorf("AdminURL = %q, want http://127.0.0.1:9448", gw.AdminURL)
	}

	data, err := os.ReadFile(gw.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	var config struct {
		Admin struct {
			Listen    string `yaml:"listen"`
			TokenFile string `yaml:"token_file"`
		} `yaml:"admin"`
		DecisionLog struct {
			File   string `yaml:"file"`
			Rotate struct {
				MaxBytes int `yaml:"max_bytes"`
			} `yaml:"rotate"`
		} `yaml:"decision_log"`
	}
	if err := yaml.Unmarshal(data, &config); err != nil {
		t.Fatal(err)
	}
	if config.Admin.Listen != "127.0.0.1:9448" || config.Admin.TokenFile != "/tokens.yaml" {
		t.Errorf("admin = %+v, want the harness's listen and the overlay's token_file", config.Admin)
	}
	if config.DecisionLog.File != filepath.Join(gwDir, "decisions.jsonl") || config.DecisionLog.Rotate.MaxBytes != 65536 {
		t.Errorf("decision_log = %+v, want the harness's file and the overlay's rotate", config.DecisionLog)
	}

	spec.configOverlay = map[string]any{"keys": "none"}
	want := "write config: config overlay: keys replaces a mapping of the harness's configuration with string"
	if err := gw.writeFiles(spec); err == nil || err.Error() != want {
		t.Errorf("writeFiles with a bad overlay: %v, want %q", err, want)
	}
}
