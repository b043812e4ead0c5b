package gateway

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// Defaults of the decision log fields.
const (
	DefaultCheckpointRecords  = decisionlog.DefaultCheckpointRecords
	DefaultCheckpointInterval = decisionlog.DefaultCheckpointInterval
)

// Bounds of the rotation fields, which keep a typing error from rotating
// the file at every batch.
const (
	minRotateBytes = 64 << 10
	minRotateAge   = time.Minute
)

// chainStateFile is the file under state_dir that keeps the chain head of
// the decision log across restarts.
const chainStateFile = "decisionlog.chain.json"

// DecisionLogConfig configures the decision records.
type DecisionLogConfig struct {
	// File receives one JSON line per decision.
	File string `yaml:"file"`
	// Sync is "always" (a record is on disk before the response that
	// depends on it is sent) or "none". Default "always".
	Sync string `yaml:"sync"`
	// Mask lists JSON pointers erased from records, in addition to the
	// rules of the policy's data.system.log.mask.
	Mask []string `yaml:"mask"`
	// SigningKeyFile is the Ed25519 audit key (PKCS #8 PEM) that signs
	// checkpoints. Empty (the default) writes no checkpoints.
	SigningKeyFile string `yaml:"signing_key_file"`
	// Checkpoint sets how often checkpoints are written.
	Checkpoint CheckpointConfig `yaml:"checkpoint"`
	// Rotate is the built-in rotation of the file.
	Rotate RotateConfig `yaml:"rotate"`
	// Ship also sends the records to a decision-log service.
	Ship *ShipConfig `yaml:"ship"`
}

// CheckpointConfig sets how often the decision log writes a signed
// checkpoint.
type CheckpointConfig struct {
	// Records is the number of records after which a checkpoint is
	// written. Default 10000.
	Records int `yaml:"records"`
	// Interval is the time after the last checkpoint at which one is
	// written when records were written since. Default 1m.
	Interval time.Duration `yaml:"interval"`
}

// RotateConfig is the decision log's built-in rotation. The zero value
// leaves rotation to an external tool and SIGHUP.
type RotateConfig struct {
	// MaxBytes rotates the file once it has reached this size in bytes.
	// Zero (the default) turns rotation by size off.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxAge rotates the file once its first record is this old. Zero
	// (the default) turns rotation by age off.
	MaxAge time.Duration `yaml:"max_age"`
	// Compress gzips each rotated file. Default false.
	Compress bool `yaml:"compress"`
}

func (d *DecisionLogConfig) setDefaults() {
	setDefault(&d.Sync, "always")
	if d.Checkpoint.Records == 0 {
		d.Checkpoint.Records = DefaultCheckpointRecords
	}
	setDefaultDuration(&d.Checkpoint.Interval, DefaultCheckpointInterval)
}

func (d *DecisionLogConfig) validate() error {
	if len(d.Mask) > 0 {
		if _, err := decisionlog.NewMasker(d.Mask); err != nil {
			return bad("decision_log.mask", err.Error(), `write JSON pointers such as "/input/pdu/content/body"`)
		}
	}
	switch d.Sync {
	case "always", "none":
	default:
		return bad("decision_log.sync", fmt.Sprintf("unknown mode %q", d.Sync), `write "always" or "none"`)
	}
	if d.Checkpoint.Records < 1 {
		return bad("decision_log.checkpoint.records", fmt.Sprintf("%d is not positive", d.Checkpoint.Records),
			"write the number of records between checkpoints; the default is 10000")
	}
	if d.Checkpoint.Interval <= 0 {
		return bad("decision_log.checkpoint.interval", "negative duration", `write a positive duration such as "1m"`)
	}
	r := d.Rotate
	if r.MaxBytes != 0 && r.MaxBytes < minRotateBytes {
		return bad("decision_log.rotate.max_bytes", fmt.Sprintf("%d is too small", r.MaxBytes),
			"write 0 to turn rotation by size off, or at least 65536, such as 1073741824 (1 GiB)")
	}
	if r.MaxAge != 0 && r.MaxAge < minRotateAge {
		return bad("decision_log.rotate.max_age", fmt.Sprintf("%s is too short", r.MaxAge),
			`write 0 to turn rotation by age off, or at least "1m", such as "24h"`)
	}
	if r.Compress && r.MaxBytes == 0 && r.MaxAge == 0 {
		return bad("decision_log.rotate.compress", "set without max_bytes or max_age",
			"set max_bytes or max_age too; files rotated by an external tool are compressed by that tool")
	}
	return nil
}

// openDecisionLog opens the decision log, masked by the policy in force
// and decision_log.mask.
func (g *Gateway) openDecisionLog() (*decisionlog.Writer, error) {
	cfg, log := g.cfg, g.log
	masker, err := g.newMasker()
	if err != nil {
		return nil, fmt.Errorf("decision_log.mask: %w", err)
	}
	signer, err := loadAuditSigner(cfg.DecisionLog.SigningKeyFile)
	if err != nil {
		return nil, err
	}
	if signer == nil {
		log.Warn("decision log checkpoints off: set decision_log.signing_key_file to sign them")
	}
	statePath := ""
	if cfg.StateDir != "" {
		statePath = filepath.Join(cfg.StateDir, chainStateFile)
	}
	opts := decisionlog.Options{
		Path:               cfg.DecisionLog.File,
		Sync:               decisionlog.SyncMode(cfg.DecisionLog.Sync),
		Masker:             masker,
		Logger:             log,
		Labels:             recordLabels(cfg),
		StatePath:          statePath,
		Signer:             signer,
		CheckpointRecords:  cfg.DecisionLog.Checkpoint.Records,
		CheckpointInterval: cfg.DecisionLog.Checkpoint.Interval,
		Rotation: decisionlog.Rotation{
			MaxBytes: cfg.DecisionLog.Rotate.MaxBytes,
			MaxAge:   cfg.DecisionLog.Rotate.MaxAge,
			Compress: cfg.DecisionLog.Rotate.Compress,
		},
	}
	if g.shipper != nil {
		opts.Committed = g.shipper.Committed
	}
	w, err := decisionlog.Open(opts)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// loadAuditSigner loads the key of decision_log.signing_key_file, or
// returns nil when the field is empty.
func loadAuditSigner(file string) (*decisionlog.Signer, error) {
	if file == "" {
		return nil, nil
	}
	key, err := decisionlog.LoadAuditKey(file)
	if err != nil {
		return nil, fmt.Errorf("decision_log.signing_key_file: %w", err)
	}
	signer, err := decisionlog.NewSigner(key)
	if err != nil {
		return nil, fmt.Errorf("decision_log.signing_key_file: %w", err)
	}
	return signer, nil
}
