package cli

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/spf13/cobra"
)

func newFnCmd() *cobra.Command {
	var cf clientFlags
	c := &cobra.Command{
		Use:   "fn",
		Short: "Create, update, invoke and inspect functions (a client of shoal's Lambda API)",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return cf.validate()
		},
	}
	cf.register(c)
	c.AddCommand(
		newFnCreateCmd(&cf), newFnUpdateCmd(&cf), newFnPublishCmd(&cf), newFnInvokeCmd(&cf),
		newFnListCmd(&cf), newFnGetCmd(&cf), newFnDeleteCmd(&cf), newFnLogsCmd(&cf),
	)
	return c
}

// configFlags are the function settings create and update share.
type configFlags struct {
	runtime, handler, description, role, arch string
	memory, timeout                           int32
	env                                       []string
}

func (f *configFlags) register(c *cobra.Command, creating bool) {
	c.Flags().StringVar(&f.runtime, "runtime", "", "runtime: provided.al2023, provided, nodejs20.x, python3.11, …")
	c.Flags().StringVar(&f.handler, "handler", "", "handler (file.function for Node.js and Python)")
	c.Flags().StringVar(&f.description, "description", "", "description")
	c.Flags().StringVar(&f.role, "role", "", "execution role ARN (recorded, not used)")
	c.Flags().Int32Var(&f.memory, "memory", 0, "memory in MB (128–10240; default 128)")
	c.Flags().Int32Var(&f.timeout, "timeout", 0, "timeout in seconds (1–900; default 3)")
	c.Flags().StringArrayVar(&f.env, "env", nil, "environment variable KEY=VALUE (repeatable)")
	if creating {
		c.Flags().StringVar(&f.arch, "arch", "", "architecture: x86_64 or arm64")
	}
}

func (f *configFlags) environment() (*types.Environment, error) {
	if len(f.env) == 0 {
		return nil, nil
	}
	vars := make(map[string]string, len(f.env))
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
		vars[k] = v
	}
	return &types.Environment{Variables: vars}, nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func optInt32(n int32) *int32 {
	if n == 0 {
		return nil
	}
	return aws.Int32(n)
}

func newFnCreateCmd(cf *clientFlags) *cobra.Command {
	var (
		cfg     configFlags
		code    string
		publish bool
	)
	c := &cobra.Command{
		Use:   "create NAME --runtime RUNTIME --code DIR|ZIP [flags]",
		Short: "Create a function from a directory or a zip file",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			zipData, err := readCode(code)
			if err != nil {
				return err
			}
			env, err := cfg.environment()
			if err != nil {
				return err
			}
			handler := cfg.handler
			if handler == "" && strings.HasPrefix(cfg.runtime, "provided") {
				handler = "bootstrap"
			}
			role := cfg.role
			if role == "" {
				role = "arn:aws:iam::123456789012:role/shoal-function"
			}
			in := &lambda.CreateFunctionInput{
				FunctionName: aws.String(args[0]),
				Runtime:      types.Runtime(cfg.runtime),
				Handler:      optString(handler),
				Role:         aws.String(role),
				Description:  optString(cfg.description),
				MemorySize:   optInt32(cfg.memory),
				Timeout:      optInt32(cfg.timeout),
				Environment:  env,
				Code:         &types.FunctionCode{ZipFile: zipData},
				Publish:      publish,
			}
			if cfg.arch != "" {
				in.Architectures = []types.Architecture{types.Architecture(cfg.arch)}
			}
			client, err := cf.lambdaClient(ctxOf(c))
			if err != nil {
				return err
			}
			out, err := client.CreateFunction(ctxOf(c), in)
			if err != nil {
				return err
			}
			return printConfig(c.OutOrStdout(), cf, out)
		},
	}
	cfg.register(c, true)
	c.Flags().StringVar(&code, "code", "", "the function's code: a directory or a .zip file (required)")
	c.Flags().BoolVar(&publish, "publish", false, "publish a version as well")
	_ = c.MarkFlagRequired("code")
	_ = c.MarkFlagRequired("runtime")
	return c
}

func newFnUpdateCmd(cf *clientFlags) *cobra.Command {
	var (
		cfg     configFlags
		code    string
		publish bool
	)
	c := &cobra.Command{
		Use:   "update NAME [--code DIR|ZIP] [flags]",
		Short: "Update a function's code, configuration, or both",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			client, err := cf.lambdaClient(ctxOf(c))
			if err != nil {
				return err
			}
			ctx := ctxOf(c)
			name := aws.String(args[0])
			env, err := cfg.environment()
			if err != nil {
				return err
			}
			var last any
			changedConfig := cfg.runtime != "" || cfg.handler != "" || cfg.description != "" || cfg.role != "" ||
				cfg.memory != 0 || cfg.timeout != 0 || env != nil
			if changedConfig {
				out, err := client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
					FunctionName: name, Runtime: types.Runtime(cfg.runtime), Handler: optString(cfg.handler),
					Description: optString(cfg.description), Role: optString(cfg.role),
					MemorySize: optInt32(cfg.memory), Timeout: optInt32(cfg.timeout), Environment: env,
				})
				if err != nil {
					return err
				}
				last = out
			}
			if code != "" || publish {
				if code == "" {
					return errors.New("--publish needs --code (use `shoal fn publish` to publish the current code)")
				}
				zipData, err := readCode(code)
				if err != nil {
					return err
				}
				out, err := client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
					FunctionName: name, ZipFile: zipData, Publish: publish,
				})
				if err != nil {
					return err
				}
				last = out
			}
			if last == nil {
				return errors.New("nothing to update: give --code or a configuration flag")
			}
			return printConfig(c.OutOrStdout(), cf, last)
		},
	}
	cfg.register(c, false)
	c.Flags().StringVar(&code, "code", "", "new code: a directory or a .zip file")
	c.Flags().BoolVar(&publish, "publish", false, "publish a version of the new code")
	return c
}

func newFnPublishCmd(cf *clientFlags) *cobra.Command {
	var description string
	c := &cobra.Command{
		Use:   "publish NAME",
		Short: "Publish a version from $LATEST",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			client, err := cf.lambdaClient(ctxOf(c))
			if err != nil {
				return err
			}
			out, err := client.PublishVersion(ctxOf(c), &lambda.PublishVersionInput{
				FunctionName: aws.String(args[0]), Description: optString(description),
			})
			if err != nil {
				return err
			}
			return printConfig(c.OutOrStdout(), cf, out)
		},
	}
	c.Flags().StringVar(&description, "description", "", "the version's description")
	return c
}

// functionError is returned by invoke when the function answered with an error, so
// that scripts see a non-zero exit.
type functionError struct{ kind string }

func (e functionError) Error() string { return "the function returned an error (" + e.kind + ")" }
func (e functionError) ExitCode() int { return 2 }

func newFnInvokeCmd(cf *clientFlags) *cobra.Command {
	var (
		payload, payloadFile, qualifier string
		showLogs                        bool
	)
	c := &cobra.Command{
		Use:   "invoke NAME [--payload JSON]",
		Short: "Invoke a function and print its response",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			body := []byte(payload)
			if payloadFile != "" {
				var err error
				if payloadFile == "-" {
					body, err = io.ReadAll(c.InOrStdin())
				} else {
					body, err = os.ReadFile(payloadFile)
				}
				if err != nil {
					return err
				}
			}
			if len(body) == 0 {
				body = []byte("{}")
			}
			in := &lambda.InvokeInput{FunctionName: aws.String(args[0]), Payload: body, Qualifier: optString(qualifier)}
			if showLogs {
				in.LogType = types.LogTypeTail
			}
			client, err := cf.lambdaClient(ctxOf(c))
			if err != nil {
				return err
			}
			out, err := client.Invoke(ctxOf(c), in)
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			if cf.json() {
				res := map[string]any{
					"StatusCode": out.StatusCode, "ExecutedVersion": aws.ToString(out.ExecutedVersion),
					"Payload": json.RawMessage(validJSONOrString(out.Payload)),
				}
				if out.FunctionError != nil {
					res["FunctionError"] = *out.FunctionError
				}
				if out.LogResult != nil {
					logs, _ := base64.StdEncoding.DecodeString(*out.LogResult)
					res["Log"] = string(logs)
				}
				if err := printJSON(w, res); err != nil {
					return err
				}
			} else {
				if showLogs && out.LogResult != nil {
					logs, _ := base64.StdEncoding.DecodeString(*out.LogResult)
					fmt.Fprint(c.ErrOrStderr(), string(logs))
				}
				fmt.Fprintln(w, string(out.Payload))
			}
			if out.FunctionError != nil {
				return functionError{kind: *out.FunctionError}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&payload, "payload", "p", "", "the event, as JSON (default {})")
	c.Flags().StringVar(&payloadFile, "payload-file", "", "read the event from a file (- for standard input)")
	c.Flags().StringVarP(&qualifier, "qualifier", "q", "", "version or alias to invoke")
	c.Flags().BoolVar(&showLogs, "logs", false, "print the invocation's log tail to standard error")
	return c
}

// validJSONOrString returns b when it is JSON, else b as a JSON string.
func validJSONOrString(b []byte) []byte {
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

func newFnListCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List functions",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			client, err := cf.lambdaClient(ctxOf(c))
			if err != nil {
				return err
			}
			var all []types.FunctionConfiguration
			p := lambda.NewListFunctionsPaginator(client, &lambda.ListFunctionsInput{})
			for p.HasMorePages() {
				page, err := p.NextPage(ctxOf(c))
				if err != nil {
					return err
				}
				all = append(all, page.Functions...)
			}
			if cf.json() {
				return printJSON(c.OutOrStdout(), map[string]any{"Functions": all})
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tRUNTIME\tMEMORY\tTIMEOUT\tLAST MODIFIED")
			for _, f := range all {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", aws.ToString(f.FunctionName), f.Runtime,
					aws.ToInt32(f.MemorySize), aws.ToInt32(f.Timeout), aws.ToString(f.LastModified))
			}
			return tw.Flush()
		},
	}
}

func newFnGetCmd(cf *clientFlags) *cobra.Command {
	var qualifier string
	c := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a function's configuration",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			client, err := cf.lambdaClient(ctxOf(c))
			if err != nil {
				return err
			}
			out, err := client.GetFunction(ctxOf(c), &lambda.GetFunctionInput{
				FunctionName: aws.String(args[0]), Qualifier: optString(qualifier),
			})
			if err != nil {
				return err
			}
			if cf.json() {
				return printJSON(c.OutOrStdout(), map[string]any{
					"Configuration": out.Configuration, "Code": out.Code, "Tags": out.Tags, "Concurrency": out.Concurrency,
				})
			}
			return printConfig(c.OutOrStdout(), cf, out.Configuration)
		},
	}
	c.Flags().StringVarP(&qualifier, "qualifier", "q", "", "version or alias")
	return c
}

func newFnDeleteCmd(cf *clientFlags) *cobra.Command {
	var qualifier string
	c := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a function, or one version of it with --qualifier",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			client, err := cf.lambdaClient(ctxOf(c))
			if err != nil {
				return err
			}
			_, err = client.DeleteFunction(ctxOf(c), &lambda.DeleteFunctionInput{
				FunctionName: aws.String(args[0]), Qualifier: optString(qualifier),
			})
			if err != nil {
				return err
			}
			if cf.json() {
				return printJSON(c.OutOrStdout(), map[string]any{"Deleted": args[0], "Qualifier": qualifier})
			}
			fmt.Fprintln(c.OutOrStdout(), "deleted", args[0]+qualifierSuffix(qualifier))
			return nil
		},
	}
	c.Flags().StringVarP(&qualifier, "qualifier", "q", "", "the version to delete")
	return c
}

func qualifierSuffix(q string) string {
	if q == "" {
		return ""
	}
	return ":" + q
}

func newFnLogsCmd(cf *clientFlags) *cobra.Command {
	var (
		follow bool
		since  time.Duration
	)
	c := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show a function's logs (START, END and REPORT lines included)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			q := url.Values{}
			if follow {
				q.Set("follow", "true")
			}
			if since > 0 {
				q.Set("since", time.Now().Add(-since).UTC().Format(time.RFC3339Nano))
			}
			u := strings.TrimRight(cf.endpoint, "/") + "/shoal/v1/functions/" + url.PathEscape(args[0]) + "/logs?" + q.Encode()
			req, err := http.NewRequestWithContext(ctxOf(c), http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			hc, err := cf.httpClient(ctxOf(c), 0)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				if ctxOf(c).Err() != nil {
					return nil
				}
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return shoalError("logs", resp)
			}
			w := c.OutOrStdout()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64*1024), 1<<20)
			for sc.Scan() {
				if cf.json() {
					fmt.Fprintln(w, sc.Text())
					continue
				}
				var rec struct {
					Time    time.Time `json:"time"`
					Version string    `json:"version"`
					Message string    `json:"message"`
				}
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					continue
				}
				fmt.Fprintf(w, "%s [%s] %s\n", rec.Time.UTC().Format("2006-01-02T15:04:05.000Z"), rec.Version, rec.Message)
			}
			if err := sc.Err(); err != nil && ctxOf(c).Err() == nil {
				return err
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	c.Flags().DurationVar(&since, "since", 0, "only lines newer than this (e.g. 10m)")
	return c
}

// printConfig prints a function configuration (any of the SDK's output shapes).
func printConfig(w io.Writer, cf *clientFlags, v any) error {
	if cf.json() {
		return printJSON(w, v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// Numbers as they were written: a float64 would print a code size of
	// 6507309 bytes as 6.507309e+06.
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, k := range []string{"FunctionName", "FunctionArn", "Version", "Runtime", "Handler", "MemorySize",
		"Timeout", "CodeSize", "CodeSha256", "State", "LastUpdateStatus", "LastModified", "RevisionId", "Description"} {
		if v, ok := m[k]; ok && v != nil && v != "" {
			fmt.Fprintf(tw, "%s\t%v\n", k, v)
		}
	}
	return tw.Flush()
}
