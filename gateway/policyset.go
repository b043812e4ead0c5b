package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

// allowlistBundleName is the pseudo-bundle under which decision records
// carry the allow-list revision, beside the policy revision under
// decisionlog.BundleName.
const allowlistBundleName = "allowlist"

// policySet is the policy state that one exchange uses from start to end:
// the enforced policy, the shadow policy with the kinds it covers, and the
// revision of the allow-list in force. A policySet is never modified once
// published; a reload publishes a new one.
type policySet struct {
	enforced *policy.Engine
	// shadow is nil without a shadow policy, and while the configured one
	// has not loaded.
	shadow      *policy.Engine
	shadowKinds map[policy.Kind]bool
	// allowlistRevision is the store's revision of the allow-list in
	// force, see [store.Store.Revision].
	allowlistRevision string
	// recordBundles is the Bundles field of the records decided with the
	// set, built once when the set is published and shared by the records,
	// which only read it.
	recordBundles map[string]decisionlog.BundleInfo
}

// shadowing reports whether the shadow policy decides kind.
func (s *policySet) shadowing(kind policy.Kind) bool {
	return s.shadow != nil && s.shadowKinds[kind]
}

// bundles returns the Bundles field of a decision record decided with s.
func (s *policySet) bundles() map[string]decisionlog.BundleInfo {
	if s.recordBundles != nil {
		return s.recordBundles
	}
	return s.newBundles()
}

func (s *policySet) newBundles() map[string]decisionlog.BundleInfo {
	return map[string]decisionlog.BundleInfo{
		decisionlog.BundleName: {Revision: s.enforced.Revision()},
		allowlistBundleName:    {Revision: s.allowlistRevision},
	}
}

// currentPolicies returns the policy set in force.
func (g *Gateway) currentPolicies() *policySet {
	return g.policies.Load()
}

// allowlistInForce returns the revision of the allow-list in force, ""
// before the first one is loaded.
func (g *Gateway) allowlistInForce() string {
	if current := g.policies.Load(); current != nil {
		return current.allowlistRevision
	}
	return ""
}

// updatePolicies publishes a copy of the policy set in force changed by
// update. Readers load the set without locking; writers are serialized by
// reloadMu, which the caller must hold.
func (g *Gateway) updatePolicies(update func(*policySet)) {
	next := policySet{}
	if current := g.policies.Load(); current != nil {
		next = *current
	}
	update(&next)
	next.recordBundles = nil
	if next.enforced != nil {
		next.recordBundles = next.newBundles()
	}
	g.policies.Store(&next)
}

// applyAllowlist puts the entries of one allow-list source in force and
// publishes the revision of the allow-list in force for decision records.
// source names the store's source of the entries ("file", "bundle",
// "signed:NAME"); the other sources stay. Every allow-list that the
// gateway loads goes through here. reloadMu must be held.
//
// NOTE: the store and the revision are swapped one after the other, so an
// exchange that starts between the two swaps reads the new entries but
// records the previous revision.
func (g *Gateway) applyAllowlist(source string, entries []store.Entry) error {
	if err := g.store.ReplaceSource(source, entries); err != nil {
		return err
	}
	if g.sourceContent == nil {
		g.sourceContent = make(map[string]string)
	}
	g.sourceContent[source] = entriesHash(entries)
	g.publishAllowlistRevision()
	g.log.Debug("allow-list applied", keySource, source, keyCount, len(entries), keyRevision, g.allowlistInForce())
	return nil
}

// sourceUnchanged reports whether entries are what applyAllowlist last
// put in force for source, leaving out who changed them and when.
// reloadMu must be held.
func (g *Gateway) sourceUnchanged(source string, entries []store.Entry) bool {
	applied, ok := g.sourceContent[source]
	return ok && applied == entriesHash(entries)
}

// publishAllowlistRevision publishes the store's allow-list revision for
// decision records. reloadMu must be held.
func (g *Gateway) publishAllowlistRevision() {
	revision := g.store.Revision()
	g.updatePolicies(func(s *policySet) { s.allowlistRevision = revision })
}

// allowlistChanged publishes the revision after a change that did not go
// through applyAllowlist, such as one made through the admin API.
func (g *Gateway) allowlistChanged() {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	g.publishAllowlistRevision()
}

// entriesHash returns the hex SHA-256 of the JSON encoding of entries
// sorted by server name, without ChangedBy and ChangedAt, so that the
// same entries in another order, or stamped at another time, hash alike.
func entriesHash(entries []store.Entry) string {
	sorted := slices.SortedFunc(slices.Values(entries), func(a, b store.Entry) int {
		return strings.Compare(strings.ToLower(a.ServerName), strings.ToLower(b.ServerName))
	})
	for i := range sorted {
		sorted[i].ChangedBy, sorted[i].ChangedAt = "", nil
	}
	// An Entry holds only strings, lists, maps and times, which always
	// encode.
	encoded, _ := json.Marshal(sorted)
	sum := sha256.Sum256(encoded)
	return hex.EncodeToString(sum[:])
}
