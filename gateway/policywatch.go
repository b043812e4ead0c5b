package gateway

import (
	"context"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/bordergate/bordergate/gateway/filewatch"
	"github.com/bordergate/bordergate/gateway/telemetry"
)

// policyCounters count policy updates and shadow decisions.
type policyCounters struct {
	reloads             metric.Int64Counter
	reloadFailures      metric.Int64Counter
	shadowDecisions     metric.Int64Counter
	shadowDisagreements metric.Int64Counter
}

func newPolicyCounters(m *telemetry.Metrics) policyCounters {
	return policyCounters{
		reloads: m.Counter("bordergate_reloads",
			"Policies and allow-lists put in force, by source."),
		reloadFailures: m.Counter("bordergate_reload_failures",
			"Policy and allow-list updates rejected, by source and reason; the one in force stays."),
		shadowDecisions: m.Counter("bordergate_shadow_decisions",
			"Decisions of the shadow policy, by kind and outcome (would_allow, would_deny, error)."),
		shadowDisagreements: m.Counter("bordergate_shadow_disagreements",
			"Decisions where the shadow policy's allow differs from the enforced policy's, by kind and enforced outcome."),
	}
}

func sourceAttribute(source string) metric.AddOption {
	return metric.WithAttributes(attribute.String("source", source))
}

func reasonAttribute(reason string) metric.AddOption {
	return metric.WithAttributes(attribute.String("reason", reason))
}

// startPolicyUpdates starts watching the policy and allow-list files and
// polling the bundle servers, until ctx ends. Close waits for them.
func (g *Gateway) startPolicyUpdates(ctx context.Context) error {
	if g.cfg.Reload.watching() {
		if err := g.startWatching(ctx); err != nil {
			return err
		}
	}
	for _, src := range []*policySource{g.enforcedSource, g.shadowSource} {
		if src == nil || src.bundle == nil {
			continue
		}
		g.background.Go(func() { g.pollBundle(ctx, src) })
	}
	return nil
}

// startWatching watches the files of the file sources. A change to a
// file reloads every source that reads it.
func (g *Gateway) startWatching(ctx context.Context) error {
	type target struct {
		paths  []string
		reload func(context.Context) error
	}
	var targets []target
	for _, src := range []*policySource{g.enforcedSource, g.shadowSource} {
		if src == nil || src.bundle != nil {
			continue
		}
		paths := slices.Clone(src.paths)
		if src.dataFile != "" {
			paths = append(paths, src.dataFile)
		}
		targets = append(targets, target{paths, func(ctx context.Context) error { return g.reloadPolicyFiles(ctx, src, triggerWatch) }})
	}
	if file := g.cfg.Allowlist.File; file != "" {
		targets = append(targets, target{[]string{file}, func(ctx context.Context) error { return g.reloadAllowlistFile(ctx, triggerWatch) }})
	}
	if len(targets) == 0 {
		return nil
	}
	var all []string
	for _, t := range targets {
		all = append(all, t.paths...)
	}
	watcher, err := filewatch.New(all, g.cfg.Reload.Debounce, g.log.With(keyComponent, "watch"))
	if err != nil {
		return err
	}
	g.log.Info("watching policy and allow-list files", keyCount, len(all), keyDebounce, g.cfg.Reload.Debounce.String())
	g.background.Go(func() {
		watcher.Run(ctx, func(changed []string) {
			for _, t := range targets {
				if slices.ContainsFunc(t.paths, func(p string) bool { return slices.Contains(changed, p) }) {
					// The reload logs and counts its own failure.
					_ = t.reload(ctx)
				}
			}
		})
	})
	return nil
}

// pollBundle refreshes the bundle of src every poll interval until ctx
// ends.
func (g *Gateway) pollBundle(ctx context.Context, src *policySource) {
	ticker := time.NewTicker(src.bundle.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			// The refresh logs and counts its own failure.
			_ = g.refreshBundle(ctx, src, triggerPoll)
		}
	}
}
