package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/internal/sigv4"
)

// DefaultEndpoint is where client commands look for shoal when neither
// --endpoint-url nor $SHOAL_ENDPOINT_URL says otherwise.
const DefaultEndpoint = "http://127.0.0.1:9000"

// clientFlags are the flags every client command takes.
type clientFlags struct {
	endpoint string
	output   string
	// cfg is the AWS configuration, once awsConfig found it.
	cfg *aws.Config
}

func (f *clientFlags) register(c *cobra.Command) {
	def := os.Getenv("SHOAL_ENDPOINT_URL")
	if def == "" {
		def = DefaultEndpoint
	}
	c.PersistentFlags().StringVar(&f.endpoint, "endpoint-url", def, "shoal's API endpoint ($SHOAL_ENDPOINT_URL when set)")
	c.PersistentFlags().StringVarP(&f.output, "output", "o", "table", "output format: table or json")
}

// defaultCredentialsFile is where `shoal up` keeps its keys with the default
// --data directory.
const defaultCredentialsFile = ".shoal/credentials"

// awsConfig is the AWS SDK configuration client commands sign with. It is found
// the way the SDKs find it (AWS_ACCESS_KEY_ID, AWS_SHARED_CREDENTIALS_FILE,
// AWS_PROFILE), except that without AWS_ACCESS_KEY_ID and
// AWS_SHARED_CREDENTIALS_FILE, shoal's own credentials file in the default data
// directory, when there is one, stands for ~/.aws/credentials. Without
// credentials anywhere (and none asked for) the requests go unsigned, which
// `shoal up --auth none` accepts.
func (f *clientFlags) awsConfig(ctx context.Context) (aws.Config, error) {
	if f.cfg != nil {
		return *f.cfg, nil
	}
	opts := []func(*config.LoadOptions) error{config.WithEC2IMDSClientEnableState(imds.ClientDisabled)}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_SHARED_CREDENTIALS_FILE") == "" {
		if _, err := os.Stat(defaultCredentialsFile); err == nil {
			opts = append(opts, config.WithSharedCredentialsFiles([]string{defaultCredentialsFile}))
		}
	}
	explicit := false
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE"} {
		explicit = explicit || os.Getenv(v) != ""
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if explicit {
			return aws.Config{}, fmt.Errorf("AWS credentials: %w", err)
		}
		cfg.Credentials = aws.AnonymousCredentials{}
	}
	f.cfg = &cfg
	return cfg, nil
}

// lambdaClient is an AWS SDK Lambda client pointed at shoal, signing with
// awsConfig's credentials.
func (f *clientFlags) lambdaClient(ctx context.Context) (*lambda.Client, error) {
	cfg, err := f.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(strings.TrimRight(f.endpoint, "/"))
	}), nil
}

// httpClient is an HTTP client for shoal's own endpoints (/shoal/v1/...) that
// signs as lambdaClient does; timeout 0 means none.
func (f *clientFlags) httpClient(ctx context.Context, timeout time.Duration) (*http.Client, error) {
	cfg, err := f.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: timeout,
		Transport: &sigv4.Transport{Credentials: cfg.Credentials, Region: cfg.Region}}, nil
}

func (f *clientFlags) json() bool { return f.output == "json" }

func (f *clientFlags) validate() error {
	switch f.output {
	case "table", "json":
		return nil
	}
	return fmt.Errorf("--output %q: want table or json", f.output)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ctxOf returns the command's context, or Background when it has none.
func ctxOf(c *cobra.Command) context.Context {
	if ctx := c.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// getShoal reads one of shoal's own JSON documents, GET endpoint+path, into
// dst; what names it in errors.
func getShoal(ctx context.Context, client *http.Client, endpoint, path, what string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return shoalError(what, resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// shoalError is the error of a refused request to one of shoal's own
// endpoints: Lambda's error code and message when the answer carries them (an
// authentication failure), else the status and body.
func shoalError(what string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if code := resp.Header.Get("X-Amzn-Errortype"); code != "" {
		var body struct {
			Lower string `json:"message"`
			Upper string `json:"Message"`
		}
		_ = json.Unmarshal(b, &body)
		return fmt.Errorf("%s: %w", what, &apiError{code: code, message: body.Lower + body.Upper})
	}
	return fmt.Errorf("%s: %s: %s", what, resp.Status, strings.TrimSpace(string(b)))
}

// apiError is a Lambda error from one of shoal's own endpoints.
type apiError struct{ code, message string }

func (e *apiError) Error() string     { return e.code + ": " + e.message }
func (e *apiError) ErrorCode() string { return e.code }

// describe says what went wrong with a client command in a line: for an AWS
// SDK error, the operation, Lambda's error code and message (without the SDK's
// "https response error", whatever the scheme), for a request that did not get
// through, the operation and why.
func describe(err error) string {
	var op *smithy.OperationError
	if !errors.As(err, &op) {
		return err.Error()
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return op.Operation() + ": " + apiErr.ErrorCode() + ": " + apiErr.ErrorMessage()
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return op.Operation() + ": " + urlErr.Error()
	}
	return err.Error()
}

// authHint is what to check after an authentication failure, or "".
func authHint(err error) string {
	var coded interface{ ErrorCode() string }
	if !errors.As(err, &coded) {
		return ""
	}
	switch coded.ErrorCode() {
	case "MissingAuthenticationTokenException", "UnrecognizedClientException", "InvalidSignatureException",
		"IncompleteSignatureException":
		return "client commands sign with the credentials the AWS SDKs find (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE, " +
			"AWS_ACCESS_KEY_ID), else with ./" + defaultCredentialsFile + "; export AWS_SHARED_CREDENTIALS_FILE as " +
			"`shoal up` printed it"
	}
	return ""
}
