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

// resultCache keeps recent results of one query, such as the decision of
// one kind or the decision-log mask, keyed by the values of the input at
// the paths that the query's rules read. Two inputs with the same key have
// the same values at every such path. The result is a function of those
// values and the policy data alone, as analyzeInputReads checks. A kept
// result is therefore the one that evaluating the query again would
// return. Kept results are shared, so T must be treated as immutable.
type resultCache[T any] struct {
	paths [][]string
	max   int
	// plans caches a *keyPlan per input type.
	plans sync.Map

	hits, misses atomic.Uint64

	mu      sync.RWMutex // guards entries
	entries map[string]T
}

// decisionCache keeps the decisions of one kind.
type decisionCache = resultCache[Decision]

func newResultCache[T any](paths [][]string, max int) *resultCache[T] {
	return &resultCache[T]{paths: paths, max: max, entries: make(map[string]T)}
}

func newDecisionCache(paths [][]string, max int) *decisionCache {
	return newResultCache[Decision](paths, max)
}

// cachedEval returns the result that cache keeps for input, or evaluates it
// with eval and keeps it. A nil cache, or an input without a cache key,
// evaluates every time. Errors are never kept.
func cachedEval[T any](cache *resultCache[T], input any, eval func() (T, error)) (T, error) {
	if cache == nil {
		return eval()
	}
	buffer := keyBuffers.Get().(*[]byte)
	defer keyBuffers.Put(buffer)
	key, err := cache.key((*buffer)[:0], input)
	if err != nil || len(key) > MaxCacheKeyBytes {
		return eval()
	}
	*buffer = key
	if result, ok := cache.get(key); ok {
		return result, nil
	}
	result, err := eval()
	if err != nil {
		return result, err
	}
	cache.put(key, result)
	return result, nil
}

// stats returns the hits and misses of c, zero for a nil cache.
func (c *resultCache[T]) stats() (hits, misses uint64) {
	if c == nil {
		return 0, 0
	}
	return c.hits.Load(), c.misses.Load()
}

// keyBuffers holds byte slices for building cache keys.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// key appends the cache key of input to buf. It returns errNoKey for an
// input form that it does not walk, such as an ast.Value, and for an input
// that is not an object.
func (c *resultCache[T]) key(buf []byte, input any) ([]byte, error) {
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
func (c *resultCache[T]) planFor(t reflect.Type) *keyPlan {
	if cached, ok := c.plans.Load(t); ok {
		return cached.(*keyPlan)
	}
	plan := newKeyPlan(t, c.paths)
	cached, _ := c.plans.LoadOrStore(t, plan)
	return cached.(*keyPlan)
}

// get returns the result kept under key.
func (c *resultCache[T]) get(key []byte) (T, bool) {
	c.mu.RLock()
	result, ok := c.entries[string(key)]
	c.mu.RUnlock()
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return result, ok
}

// put keeps result under key. When the cache is full, one kept result,
// chosen by map iteration order, makes room for it.
func (c *resultCache[T]) put(key []byte, result T) {
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
	c.entries[string(key)] = result
}
