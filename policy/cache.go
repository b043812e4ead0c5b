package policy

import (
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
)

// DefaultDecisionCacheSize is the number of decisions that an Engine keeps for
// reuse per kind when Config.DecisionCacheSize is zero.
const DefaultDecisionCacheSize = 4096

// MaxCacheKeyBytes is the size above which a decision is not cached. Keys
// are the input values that the policy reads, so a policy that reads
// message content could otherwise keep up to DefaultDecisionCacheSize
// messages per kind in memory. With this bound, a cache of the default size
// holds at most 16 MiB of keys per kind.
const MaxCacheKeyBytes = 4096

// errNoKey means that an input cannot be reduced to a cache key, so its
// decision is evaluated without the cache.
var errNoKey = errors.New("input has no cache key")

// decisionCache keeps recent decisions of one kind, keyed by the values of
// the input at the paths that the policy reads. Two inputs with the same
// key have the same values at every such path. The decision is a function
// of those values and the policy data alone, as analyzeInputReads checks.
// A kept decision is therefore the one that evaluating the policy again
// would return.
type decisionCache struct {
	paths [][]string
	max   int
	// plans caches a *keyPlan per input type.
	plans sync.Map

	hits, misses atomic.Uint64

	mu      sync.RWMutex // guards entries
	entries map[string]Decision
}

func newDecisionCache(paths [][]string, max int) *decisionCache {
	return &decisionCache{paths: paths, max: max, entries: make(map[string]Decision)}
}

// keyBuffers holds byte slices for building cache keys.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// key appends the cache key of input to buf. It returns errNoKey for an
// input form that it does not walk, such as an ast.Value, and for an input
// that is not an object.
func (c *decisionCache) key(buf []byte, input any) ([]byte, error) {
	if input == nil {
		return nil, errNoKey
	}
	root := reflect.ValueOf(input)
	if root.Type().Implements(astValueType) {
		return nil, errNoKey
	}
	// The read analysis takes the input to be an object, whose existence
	// and type never vary, so other inputs are evaluated each time.
	switch object := indirect(root); {
	case !object.IsValid():
		return nil, errNoKey
	case object.Kind() == reflect.Struct, object.Kind() == reflect.Map && object.Type().Key().Kind() == reflect.String:
	default:
		return nil, errNoKey
	}
	return c.planFor(root.Type()).append(buf, root)
}

// planFor returns the key plan of inputs of type t.
func (c *decisionCache) planFor(t reflect.Type) *keyPlan {
	if cached, ok := c.plans.Load(t); ok {
		return cached.(*keyPlan)
	}
	plan := newKeyPlan(t, c.paths)
	cached, _ := c.plans.LoadOrStore(t, plan)
	return cached.(*keyPlan)
}

// get returns the decision kept under key.
func (c *decisionCache) get(key []byte) (Decision, bool) {
	c.mu.RLock()
	decision, ok := c.entries[string(key)]
	c.mu.RUnlock()
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return decision, ok
}

// put keeps decision under key. When the cache is full, one kept decision,
// chosen by map iteration order, makes room for it.
func (c *decisionCache) put(key []byte, decision Decision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[string(key)]; ok {
		return
	}
	if len(c.entries) >= c.max {
		for old := range c.entries {
			delete(c.entries, old)
			break
		}
	}
	c.entries[string(key)] = decision
}
