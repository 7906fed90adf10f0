package controlplane

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/shoal-dev/shoal/internal/funcurl"
	"github.com/shoal-dev/shoal/internal/lambdaapi"
)

// DefaultURLListen is where function URLs are served by default.
const DefaultURLListen = "127.0.0.1:9002"

// listenURLs opens the function URL listener, so that the API can name the
// address its URLs are served at.
func (s *Server) listenURLs() error {
	ln, err := net.Listen("tcp", s.cfg.URLListen)
	if err != nil {
		return fmt.Errorf("function URL listener: %w", err)
	}
	s.urlLn = ln
	return nil
}

// functionURL is the address of the function URL with id: the path form on the
// URL listener (a name of the AWS form, <id>.lambda-url.<region>.on.aws, is
// served too, for clients that resolve it to the listener).
func (s *Server) functionURL(id string) string {
	host, port, _ := net.SplitHostPort(s.urlLn.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/" + id + "/"
}

// serveURLs serves the function URL front door on the listener.
func (s *Server) serveURLs(inv lambdaapi.Invoker, auth funcurl.Authenticator) error {
	front, err := funcurl.New(funcurl.Config{Region: s.cfg.Region, AccountID: s.cfg.AccountID},
		funcurl.Deps{Registry: s.reg, Invoker: inv, Auth: auth, Logger: s.logger, Clock: s.clock})
	if err != nil {
		return err
	}
	s.urlHTTP = &http.Server{Handler: front, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.urlHTTP.Serve(s.urlLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("function URL server stopped", "err", err)
		}
	}()
	return nil
}

// URLAddr is the address function URLs are served on.
func (s *Server) URLAddr() string { return s.urlLn.Addr().String() }
