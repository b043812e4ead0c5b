package signedlist

import "testing"

// TestDeployExampleKeys checks that the example keys file of deploy/
// loads.
func TestDeployExampleKeys(t *testing.T) {
	set, err := LoadKeys("../../deploy/federation-keys.example.json")
	if err != nil {
		t.Fatal(err)
	}
	if ids := set.IDs(); len(ids) != 2 || ids[0] != "authority-2026-01" || ids[1] != "authority-2026-07" {
		t.Errorf("key IDs = %v, want authority-2026-01 and authority-2026-07", ids)
	}
}
