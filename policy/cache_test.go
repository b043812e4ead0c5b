package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// cacheKey returns the cache key of input for paths, failing the test when
// the input has none.
func cacheKey(t testing.TB, paths [][]string, input any) string {
	t.Helper()
	key, err := newDecisionCache(paths, 1).key(nil, input)
	if err != nil {
		t.Fatalf("key(%T) error = %v", input, err)
	}
	return string(key)
}

func TestCacheKeyIgnoresUnreadPaths(t *testing.T) {
	paths := [][]string{{"origin"}, {"pdu", "type"}}
	a, b := messagePDU(), messagePDU()
	b.PDU.Content = map[string]any{"body": "another message"}
	b.PDU.EventID = "$other"
	b.Now = "2030-01-01T00:00:00Z"

	if cacheKey(t, paths, a) != cacheKey(t, paths, b) {
		t.Error("inputs that differ outside the read paths have different keys")
	}
}

func TestCacheKeyDistinguishesReadValues(t *testing.T) {
	paths := [][]string{{"origin"}, {"pdu", "type"}, {"pdu", "state_key"}, {"sender_entry"}}
	base := messagePDU()
	empty := ""
	changes := map[string]func(*PDUInput){
		"event type":              func(in *PDUInput) { in.PDU.Type = "m.room.member" },
		"entry label":             func(in *PDUInput) { in.Origin.Entry.Labels["classification"] = "public" },
		"entry label added":       func(in *PDUInput) { in.Origin.Entry.Labels["extra"] = "" },
		"entry expired":           func(in *PDUInput) { in.Origin.Entry.Expired = true },
		"no origin entry":         func(in *PDUInput) { in.Origin.Entry = nil },
		"empty origin entry":      func(in *PDUInput) { in.Origin.Entry = &AllowlistEntry{} },
		"empty state key":         func(in *PDUInput) { in.PDU.StateKey = &empty },
		"no sender entry":         func(in *PDUInput) { in.SenderEntry = nil },
		"endpoints nil":           func(in *PDUInput) { in.Origin.Entry.Endpoints = nil },
		"endpoints empty":         func(in *PDUInput) { in.Origin.Entry.Endpoints = []string{} },
		"endpoints reordered":     func(in *PDUInput) { in.Origin.Entry.Endpoints = []string{"send", "*"} },
		"string split across two": func(in *PDUInput) { in.Origin.KeyID, in.Origin.ServerName = "ed25519:ahs1", ".example" },
	}
	base.Origin.Entry.Endpoints = []string{"*", "send"}
	seen := map[string]string{cacheKey(t, paths, base): "base"}
	for name, change := range changes {
		in := messagePDU()
		in.Origin.Entry.Endpoints = []string{"*", "send"}
		change(in)
		key := cacheKey(t, paths, in)
		if other, ok := seen[key]; ok {
			t.Errorf("%s: same key as %s", name, other)
		}
		seen[key] = name
	}
}

func TestCacheKeyMapOrder(t *testing.T) {
	paths := [][]string{{"pdu", "content"}}
	first, second := map[string]any{}, map[string]any{}
	for i := range 50 {
		first[fmt.Sprint("k", i)] = i
	}
	for i := 49; i >= 0; i-- {
		second[fmt.Sprint("k", i)] = i
	}
	a, b := messagePDU(), messagePDU()
	a.PDU.Content, b.PDU.Content = first, second
	if cacheKey(t, paths, a) != cacheKey(t, paths, b) {
		t.Error("equal maps built in different orders have different keys")
	}
}

func TestCacheKeyInputForms(t *testing.T) {
	paths := [][]string{{"pdu", "type"}}
	cache := newDecisionCache(paths, 1)
	if _, err := cache.key(nil, ast.MustParseTerm(`{"pdu": {"type": "m.room.message"}}`).Value); err == nil {
		t.Error("key(ast.Value) error = nil, want errNoKey")
	}
	if _, err := cache.key(nil, nil); err == nil {
		t.Error("key(nil) error = nil, want errNoKey")
	}
	if _, err := cache.key(nil, map[string]any{"pdu": map[string]any{"type": make(chan int)}}); err == nil {
		t.Error("key with a channel error = nil, want errNoKey")
	}
	typed := messagePDU()
	if _, err := cache.key(nil, *typed); err != nil {
		t.Errorf("key(PDUInput value) error = %v", err)
	}
}

func TestCacheEvicts(t *testing.T) {
	cache := newDecisionCache(nil, 2)
	for i := range 5 {
		cache.put([]byte{byte(i)}, Decision{Allow: true})
	}
	if n := len(cache.entries); n != 2 {
		t.Errorf("cache holds %d decisions, want its maximum of 2", n)
	}
}

// TestCachedDecisionsMatchEvaluation decides many inputs that share values
// with an engine that caches and one that does not, and requires the same
// decision for each.
func TestCachedDecisionsMatchEvaluation(t *testing.T) {
	ctx := context.Background()
	cached := newDefaultEngine(t)
	uncached, err := New(ctx, Config{Paths: []string{defaultPolicyDir}, DataFile: "testdata/config.yaml", DecisionCacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	random := rand.New(rand.NewPCG(1, 2))
	types := []string{"m.room.message", "m.room.member", "org.example.custom", "com.example.forbidden", ""}
	rooms := []string{"!room:hs1.example", "!restricted:hs2.example", ""}
	senders := []string{"hs1.example", "hs3.example", "stranger.example"}
	for i := range 2000 {
		in := messagePDU()
		in.PDU.Type = types[random.IntN(len(types))]
		in.Room.RoomID = rooms[random.IntN(len(rooms))]
		in.PDU.SenderServer = senders[random.IntN(len(senders))]
		switch in.PDU.SenderServer {
		case "hs3.example":
			in.SenderEntry = hs3Entry()
		case "stranger.example":
			in.SenderEntry = nil
		}
		in.Verified.Signatures = random.IntN(10) > 0
		in.Origin.Entry.Expired = random.IntN(20) == 0
		in.PDU.Content = map[string]any{"body": fmt.Sprint("message ", i)}

		got, err := cached.Decide(ctx, KindPDU, in)
		if err != nil {
			t.Fatalf("input %d: cached Decide error = %v", i, err)
		}
		want, err := uncached.Decide(ctx, KindPDU, in)
		if err != nil {
			t.Fatalf("input %d: Decide error = %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %d: cached decision %+v, evaluated %+v", i, got, want)
		}
	}
	hits, misses := cached.CacheStats(KindPDU)
	if hits == 0 || misses == 0 {
		t.Errorf("CacheStats = %d hits, %d misses; want both non-zero", hits, misses)
	}
	if hits, misses := uncached.CacheStats(KindPDU); hits != 0 || misses != 0 {
		t.Errorf("CacheStats with the cache off = %d hits, %d misses; want 0 and 0", hits, misses)
	}
}

func TestCacheOffWhenPolicyReadsClock(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"request.rego": "package bordergate.request\n\ndecision := {\"allow\": time.now_ns() > 0, \"reasons\": []}\n",
		"pdu.rego":     "package bordergate.pdu\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
		"edu.rego":     "package bordergate.edu\n\ndecision := {\"allow\": input.edu.edu_type == \"m.typing\", \"reasons\": []}\n",
	})
	engine, err := New(context.Background(), Config{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := engine.Decide(context.Background(), KindRequest, sendRequest()); err != nil {
			t.Fatal(err)
		}
	}
	if hits, misses := engine.CacheStats(KindRequest); hits != 0 || misses != 0 {
		t.Errorf("request CacheStats = %d hits, %d misses; want the cache off", hits, misses)
	}
	if engine.caches[KindEDU] == nil {
		t.Error("EDU decisions not cached, want cached: that policy reads only input.edu.edu_type")
	}
}

func TestCachedDecideAllocations(t *testing.T) {
	engine := newDefaultEngine(t)
	ctx := context.Background()
	in := messagePDU()
	if _, err := engine.Decide(ctx, KindPDU, in); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := engine.Decide(ctx, KindPDU, in); err != nil {
			t.Fatal(err)
		}
	})
	// The sorted keys of the two entries' maps (pinned_keys and labels, in
	// origin and sender_entry) are the only allocations left.
	if allocs > 8 {
		t.Errorf("cached Decide allocates %.0f times, want at most 8", allocs)
	}
}

// FuzzCacheKey checks the property that makes a cached decision sound:
// inputs with equal keys have equal values at every read path, as the
// policy sees them.
func FuzzCacheKey(f *testing.F) {
	f.Add([]byte(`{"pdu": {"type": "m.room.message", "content": {"body": "a"}}}`),
		[]byte(`{"pdu": {"type": "m.room.message", "content": {"body": "b"}}}`))
	f.Add([]byte(`{"origin": {"entry": null}}`), []byte(`{"origin": {}}`))
	f.Add([]byte(`{"origin": {"entry": {"labels": {"a": "1"}}}}`), []byte(`{"origin": {"entry": {"labels": {"a": 1}}}}`))
	f.Add([]byte(`{"version": 1, "pdu": {"state_key": ""}}`), []byte(`{"version": 1.0, "pdu": {"state_key": null}}`))
	f.Add([]byte(`{"sender_entry": {"expired": false}}`), []byte(`{"sender_entry": {"expired": "false"}}`))
	paths := [][]string{{"origin", "entry"}, {"pdu", "state_key"}, {"pdu", "type"}, {"sender_entry"}, {"version"}}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		a, b := fuzzInputs(first), fuzzInputs(second)
		for _, x := range a {
			for _, y := range b {
				checkEqualKeysEqualValues(t, paths, x, y)
			}
		}
	})
}

// fuzzInputs decodes data as a generic document and as a PDUInput, the two
// forms the gateway and its commands pass to Decide.
func fuzzInputs(data []byte) []any {
	var inputs []any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var generic map[string]any
	if dec.Decode(&generic) == nil {
		inputs = append(inputs, generic)
	}
	var typed PDUInput
	if json.Unmarshal(data, &typed) == nil {
		inputs = append(inputs, &typed)
	}
	return inputs
}

func checkEqualKeysEqualValues(t *testing.T, paths [][]string, a, b any) {
	cache := newDecisionCache(paths, 1)
	keyA, errA := cache.key(nil, a)
	keyB, errB := cache.key(nil, b)
	if errA != nil || errB != nil || !bytes.Equal(keyA, keyB) {
		return
	}
	valueA, err := toValue(a)
	if err != nil {
		return
	}
	valueB, err := toValue(b)
	if err != nil {
		return
	}
	for _, path := range paths {
		ref := ast.Ref{}
		for _, name := range path {
			ref = append(ref, ast.StringTerm(name))
		}
		atA, errA := valueA.Find(ref)
		atB, errB := valueB.Find(ref)
		if (errA == nil) != (errB == nil) || (errA == nil && atA.Compare(atB) != 0) {
			t.Fatalf("equal keys, but input.%v differs: %v (%v) and %v (%v)\ninputs %#v and %#v",
				path, atA, errA, atB, errB, a, b)
		}
	}
}

func TestCacheKeyNeedsObject(t *testing.T) {
	cache := newDecisionCache(nil, 1)
	for _, input := range []any{"text", 12, []any{"a"}, (*PDUInput)(nil), map[int]string{1: "a"}} {
		if _, err := cache.key(nil, input); err == nil {
			t.Errorf("key(%#v) error = nil, want errNoKey", input)
		}
	}
}

func TestCacheSkipsLargeKeys(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"request.rego": "package bordergate.request\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
		"pdu.rego":     "package bordergate.pdu\n\ndecision := {\"allow\": input.pdu.content.body != \"\", \"reasons\": []}\n",
		"edu.rego":     "package bordergate.edu\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
	})
	engine, err := New(context.Background(), Config{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	small, large := messagePDU(), messagePDU()
	large.PDU.Content = map[string]any{"body": strings.Repeat("x", MaxCacheKeyBytes)}
	for _, in := range []*PDUInput{small, small, large, large} {
		if _, err := engine.Decide(context.Background(), KindPDU, in); err != nil {
			t.Fatal(err)
		}
	}
	if hits, misses := engine.CacheStats(KindPDU); hits != 1 || misses != 1 {
		t.Errorf("CacheStats = %d hits, %d misses; want 1 and 1, with the large inputs not looked up", hits, misses)
	}
	if n := len(engine.caches[KindPDU].entries); n != 1 {
		t.Errorf("cache holds %d decisions, want only the small input's", n)
	}
}
