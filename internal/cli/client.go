package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/spf13/cobra"
)

// DefaultEndpoint is where client commands look for shoal when neither
// --endpoint-url nor $SHOAL_ENDPOINT_URL says otherwise.
const DefaultEndpoint = "http://127.0.0.1:9000"

// clientFlags are the flags every client command takes.
type clientFlags struct {
	endpoint string
	output   string
}

func (f *clientFlags) register(c *cobra.Command) {
	def := os.Getenv("SHOAL_ENDPOINT_URL")
	if def == "" {
		def = DefaultEndpoint
	}
	c.PersistentFlags().StringVar(&f.endpoint, "endpoint-url", def, "shoal's API endpoint (default $SHOAL_ENDPOINT_URL, else "+DefaultEndpoint+")")
	c.PersistentFlags().StringVarP(&f.output, "output", "o", "table", "output format: table or json")
}

// lambdaClient is an AWS SDK Lambda client pointed at shoal. shoal accepts any
// credentials, so it signs with the environment's if there are any and with a
// placeholder otherwise.
func (f *clientFlags) lambdaClient() *lambda.Client {
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		id, secret = "shoal", "shoal"
	}
	return lambda.New(lambda.Options{
		Region:       region,
		BaseEndpoint: aws.String(strings.TrimRight(f.endpoint, "/")),
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, os.Getenv("AWS_SESSION_TOKEN")),
	})
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
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s: %s", what, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
