package cluster

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/liminal-data/liminal/internal/authn"
)

// errUnauthenticated never says what was wrong with the token, nor echoes it.
var errUnauthenticated = status.Error(codes.Unauthenticated, "missing or invalid token")

// authorized checks the bearer token of an incoming call in constant time.
// An empty want turns authentication off.
func authorized(ctx context.Context, want string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	return authorizedMD(md, want)
}

func authorizedMD(md metadata.MD, want string) error {
	if want == "" {
		return nil
	}
	for _, v := range md.Get("authorization") {
		got, ok := authn.BearerToken(v)
		if ok && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
			return nil
		}
	}
	return errUnauthenticated
}

// ServerOptions are the gRPC options of a coordinator: the token check on
// every call and, with a certificate, TLS.
func ServerOptions(token, certFile, keyFile string) ([]grpc.ServerOption, error) {
	opts := []grpc.ServerOption{
		// The token is checked on the headers, before the stream exists and
		// before a byte of the body is read: four 200 MiB calls with a wrong
		// token made the coordinator decode 800 MiB when the check ran in
		// the interceptor only.
		grpc.InTapHandle(func(ctx context.Context, info *tap.Info) (context.Context, error) {
			return ctx, authorizedMD(info.Header, token)
		}),
		grpc.MaxConcurrentStreams(maxStreams),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := authorized(ctx, token); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.MaxSendMsgSize(maxMessage),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return nil, errors.New("TLS needs both a certificate and a key")
		}
		creds, err := credentials.NewServerTLSFromFile(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	return opts, nil
}

// maxMessage bounds one message: partial results travel inside a
// completion.
const maxMessage = 512 << 20

// maxStreams bounds the calls one connection may have open at once.
const maxStreams = 256

// bearer sends the token with every call.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b.token == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false so that a token can be used on
// loopback without TLS; across machines, give the coordinator a
// certificate.
func (b bearer) RequireTransportSecurity() bool { return b.secure }

// DialConfig says how to reach a coordinator.
type DialConfig struct {
	Addr  string
	Token string
	// CAFile, when set, turns TLS on and trusts the certificates it holds
	// (PEM); TLS also turns on with an empty CAFile when TLS is true (the
	// system roots).
	CAFile string
	TLS    bool
	// ServerName overrides the name checked in the coordinator's
	// certificate.
	ServerName string
}

// Dial connects to a coordinator (lazily: calls wait for it to come up,
// and reconnect when it restarts).
func Dial(c DialConfig) (*grpc.ClientConn, error) {
	tlsOn := c.TLS || c.CAFile != ""
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if tlsOn {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("TLS CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("TLS CA %s: no PEM certificate", c.CAFile)
			}
			cfg.RootCAs = pool
		}
		creds = credentials.NewTLS(cfg)
	}
	return grpc.NewClient(c.Addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(bearer{token: c.Token, secure: tlsOn}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 20 * time.Second, Timeout: 10 * time.Second}),
	)
}
