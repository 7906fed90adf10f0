// Package pricing holds shoal's dated, versioned price catalogue: what AWS charges for
// Lambda requests and duration (by architecture, with the volume tiers, the free tier and
// the per-millisecond rounding), for Provisioned Concurrency, and for Lambda Managed
// Instances (EC2 on-demand price per instance type, the management fee on the on-demand
// price, the request charge).
//
// A snapshot is embedded in the binary (catalog.json); users replace it with Load. Every
// price is a decimal.Decimal and nothing here rounds: amounts are rounded half-up to cents
// only when presented (RoundCents, FormatUSD). The package knows prices and the unit rules
// that go with them; it does not size fleets or model traffic (that is internal/cost).
package pricing

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// HoursPerMonth is the month AWS prices use: 730 hours (365 days × 24 h ÷ 12).
const HoursPerMonth = 730

// MBPerGB converts a function's memory in MB to the GB of a GB-second: 1 GB = 1024 MB.
const MBPerGB = 1024

// SchemaVersion is the catalogue file format this package reads.
const SchemaVersion = 1

// Arch is a Lambda instruction set architecture.
type Arch string

// The two architectures Lambda offers.
const (
	X86_64 Arch = "x86_64"
	ARM64  Arch = "arm64"
)

// ParseArch accepts Lambda's names (x86_64, arm64) and the common aliases.
func ParseArch(s string) (Arch, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "x86_64", "x86-64", "x86", "amd64":
		return X86_64, nil
	case "arm64", "aarch64", "arm", "graviton":
		return ARM64, nil
	}
	return "", fmt.Errorf("unknown architecture %q (want x86_64 or arm64)", s)
}

//go:embed catalog.json
var embedded []byte

// Catalog is one dated snapshot of prices for one region and currency. It is plain data;
// callers must not modify a Catalog that others share.
type Catalog struct {
	Schema           int              `json:"schema"`
	Version          string           `json:"version"`
	Date             string           `json:"date"` // effective date, YYYY-MM-DD
	Region           string           `json:"region"`
	Currency         string           `json:"currency"`
	Source           string           `json:"source,omitempty"`
	Lambda           Lambda           `json:"lambda"`
	ManagedInstances ManagedInstances `json:"managed_instances"`
}

// Lambda holds the prices of default (on-demand) Lambda and Provisioned Concurrency.
type Lambda struct {
	RequestPerMillion    decimal.Decimal    `json:"request_per_million"`
	BillingGranularityMs int64              `json:"billing_granularity_ms"`
	FreeTier             FreeTier           `json:"free_tier"`
	Architectures        map[Arch]ArchRates `json:"architectures"`
}

// FreeTier is the monthly per-account allowance of default Lambda.
type FreeTier struct {
	RequestsPerMonth  decimal.Decimal `json:"requests_per_month"`
	GBSecondsPerMonth decimal.Decimal `json:"gb_seconds_per_month"`
}

// ArchRates are the duration prices of one architecture.
type ArchRates struct {
	// DurationTiers are ordered by UpToGBSeconds; the last has none (unbounded). The
	// bounds are cumulative monthly GB-seconds.
	DurationTiers []Tier `json:"duration_tiers"`
	// ProvisionedPerGBSecond is charged for every GB-second a Provisioned Concurrency
	// environment is allocated, busy or idle.
	ProvisionedPerGBSecond decimal.Decimal `json:"provisioned_per_gb_second"`
	// ProvisionedDurationPerGBSecond is charged instead of the on-demand duration price
	// for invocations that run on a provisioned environment.
	ProvisionedDurationPerGBSecond decimal.Decimal `json:"provisioned_duration_per_gb_second"`
}

// Tier is one step of the duration price.
type Tier struct {
	UpToGBSeconds *decimal.Decimal `json:"up_to_gb_seconds,omitempty"`
	PerGBSecond   decimal.Decimal  `json:"per_gb_second"`
}

// ManagedInstances holds the prices of Lambda Managed Instances.
type ManagedInstances struct {
	RequestPerMillion decimal.Decimal `json:"request_per_million"`
	// ManagementFee is the fraction of the EC2 on-demand price charged on top of the
	// instances. It is always worked out on the on-demand price, whatever discount
	// (Savings Plan, Reserved Instance) applies to the EC2 part.
	ManagementFee decimal.Decimal `json:"management_fee"`
	InstanceTypes []InstanceType  `json:"instance_types"`
}

// InstanceType is one EC2 instance type a capacity provider can launch.
type InstanceType struct {
	Name           string          `json:"name"`
	Arch           Arch            `json:"arch"`
	VCPU           int             `json:"vcpu"`
	MemoryGiB      int             `json:"memory_gib"`
	OnDemandHourly decimal.Decimal `json:"on_demand_hourly"`
}

// Family is the instance family letter: "c", "m" or "r" (the part of the name before the
// generation digit).
func (it InstanceType) Family() string {
	i := strings.IndexAny(it.Name, "0123456789")
	if i <= 0 {
		return it.Name
	}
	return it.Name[:i]
}

// MemoryGiBPerVCPU is the instance's memory-to-vCPU ratio (2 for C, 4 for M, 8 for R).
func (it InstanceType) MemoryGiBPerVCPU() int {
	if it.VCPU == 0 {
		return 0
	}
	return it.MemoryGiB / it.VCPU
}

// Default returns the catalogue embedded in the binary. Each call returns a fresh copy.
func Default() *Catalog {
	c, err := Parse(embedded)
	if err != nil {
		panic(fmt.Sprintf("pricing: embedded catalogue is invalid: %v", err))
	}
	return c
}

// Load reads a catalogue file (the format of the embedded catalog.json) and validates it.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read price catalogue: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("price catalogue %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a catalogue. Unknown fields are an error, so a typo in an
// override file does not silently fall back to zero.
func Parse(data []byte) (*Catalog, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Catalog
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode: trailing data after the catalogue")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks that the catalogue is complete and consistent.
func (c *Catalog) Validate() error {
	if c.Schema != SchemaVersion {
		return fmt.Errorf("schema %d not supported (want %d)", c.Schema, SchemaVersion)
	}
	if c.Version == "" {
		return errors.New("version is empty")
	}
	if _, err := time.Parse(time.DateOnly, c.Date); err != nil {
		return fmt.Errorf("date %q is not YYYY-MM-DD", c.Date)
	}
	if c.Currency == "" {
		return errors.New("currency is empty")
	}
	l := c.Lambda
	if err := nonNegative("lambda.request_per_million", l.RequestPerMillion); err != nil {
		return err
	}
	if l.BillingGranularityMs < 1 {
		return fmt.Errorf("lambda.billing_granularity_ms %d must be at least 1", l.BillingGranularityMs)
	}
	if err := nonNegative("lambda.free_tier.requests_per_month", l.FreeTier.RequestsPerMonth); err != nil {
		return err
	}
	if err := nonNegative("lambda.free_tier.gb_seconds_per_month", l.FreeTier.GBSecondsPerMonth); err != nil {
		return err
	}
	for _, a := range []Arch{X86_64, ARM64} {
		r, ok := l.Architectures[a]
		if !ok {
			return fmt.Errorf("lambda.architectures.%s is missing", a)
		}
		if err := r.validate(string(a)); err != nil {
			return err
		}
	}
	for a := range l.Architectures {
		if a != X86_64 && a != ARM64 {
			return fmt.Errorf("lambda.architectures: unknown architecture %q", a)
		}
	}
	m := c.ManagedInstances
	if err := nonNegative("managed_instances.request_per_million", m.RequestPerMillion); err != nil {
		return err
	}
	if m.ManagementFee.IsNegative() || m.ManagementFee.GreaterThan(decimal.NewFromInt(1)) {
		return fmt.Errorf("managed_instances.management_fee %s must be a fraction between 0 and 1", m.ManagementFee)
	}
	if len(m.InstanceTypes) == 0 {
		return errors.New("managed_instances.instance_types is empty")
	}
	seen := make(map[string]bool, len(m.InstanceTypes))
	for i, it := range m.InstanceTypes {
		where := fmt.Sprintf("managed_instances.instance_types[%d]", i)
		if it.Name == "" {
			return fmt.Errorf("%s: name is empty", where)
		}
		if seen[it.Name] {
			return fmt.Errorf("%s: duplicate instance type %q", where, it.Name)
		}
		seen[it.Name] = true
		if it.Arch != X86_64 && it.Arch != ARM64 {
			return fmt.Errorf("%s (%s): unknown architecture %q", where, it.Name, it.Arch)
		}
		if it.VCPU < 1 || it.MemoryGiB < 1 {
			return fmt.Errorf("%s (%s): vcpu and memory_gib must be positive", where, it.Name)
		}
		if !it.OnDemandHourly.IsPositive() {
			return fmt.Errorf("%s (%s): on_demand_hourly must be positive", where, it.Name)
		}
	}
	return nil
}

func (r ArchRates) validate(a string) error {
	where := "lambda.architectures." + a
	if len(r.DurationTiers) == 0 {
		return fmt.Errorf("%s.duration_tiers is empty", where)
	}
	prev := decimal.Zero
	for i, t := range r.DurationTiers {
		if err := nonNegative(fmt.Sprintf("%s.duration_tiers[%d].per_gb_second", where, i), t.PerGBSecond); err != nil {
			return err
		}
		last := i == len(r.DurationTiers)-1
		switch {
		case last && t.UpToGBSeconds != nil:
			return fmt.Errorf("%s.duration_tiers: the last tier must have no up_to_gb_seconds", where)
		case !last && t.UpToGBSeconds == nil:
			return fmt.Errorf("%s.duration_tiers[%d]: only the last tier may be unbounded", where, i)
		case !last && !t.UpToGBSeconds.GreaterThan(prev):
			return fmt.Errorf("%s.duration_tiers[%d]: up_to_gb_seconds must increase", where, i)
		}
		if !last {
			prev = *t.UpToGBSeconds
		}
	}
	if err := nonNegative(where+".provisioned_per_gb_second", r.ProvisionedPerGBSecond); err != nil {
		return err
	}
	return nonNegative(where+".provisioned_duration_per_gb_second", r.ProvisionedDurationPerGBSecond)
}

func nonNegative(name string, d decimal.Decimal) error {
	if d.IsNegative() {
		return fmt.Errorf("%s %s must not be negative", name, d)
	}
	return nil
}

// Rates returns the duration prices of one architecture.
func (c *Catalog) Rates(a Arch) (ArchRates, error) {
	r, ok := c.Lambda.Architectures[a]
	if !ok {
		return ArchRates{}, fmt.Errorf("no Lambda prices for architecture %q", a)
	}
	return r, nil
}

// InstanceType looks an instance type up by name.
func (c *Catalog) InstanceType(name string) (InstanceType, error) {
	for _, it := range c.ManagedInstances.InstanceTypes {
		if it.Name == name {
			return it, nil
		}
	}
	return InstanceType{}, fmt.Errorf("instance type %q is not in the price catalogue %s", name, c.Version)
}

// InstanceTypes lists the instance types of one architecture in catalogue order; an empty
// arch lists all of them.
func (c *Catalog) InstanceTypes(a Arch) []InstanceType {
	var out []InstanceType
	for _, it := range c.ManagedInstances.InstanceTypes {
		if a == "" || it.Arch == a {
			out = append(out, it)
		}
	}
	return out
}
