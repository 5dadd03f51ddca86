package cluster

import (
	"context"

	"google.golang.org/grpc"

	"github.com/liminal-data/liminal/connectors"
)

func permanent(err error) error { return connectors.Permanent(err) }

// unary describes one method of the service.
func unary[Req, Resp any](name string, f func(*Server, context.Context, *Req) (*Resp, error)) grpc.MethodDesc {
	return grpc.MethodDesc{MethodName: name, Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		in := new(Req)
		if err := dec(in); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, req any) (any, error) { return f(srv.(*Server), ctx, req.(*Req)) }
		if ic == nil {
			return h(ctx, in)
		}
		return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod(name)}, h)
	}}
}

// serviceDesc is the coordinator's gRPC service, described by hand: the
// messages are the JSON types of wire.go.
var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		unary("Register", (*Server).register),
		unary("Deregister", (*Server).deregister),
		unary("Acquire", (*Server).acquire),
		unary("Heartbeat", (*Server).heartbeat),
		unary("Complete", (*Server).complete),
		unary("Fail", (*Server).fail),
		unary("Runs", (*Server).runs),
	},
	Metadata: "liminal/cluster/v1",
}

// Client calls a coordinator.
type Client struct{ cc *grpc.ClientConn }

// NewClient wraps a connection from Dial.
func NewClient(cc *grpc.ClientConn) *Client { return &Client{cc: cc} }

// Close closes the connection.
func (c *Client) Close() error { return c.cc.Close() }

func (c *Client) Register(ctx context.Context, r *RegisterRequest) (*RegisterResponse, error) {
	out := new(RegisterResponse)
	return out, invoke(ctx, c.cc, "Register", r, out)
}

func (c *Client) Deregister(ctx context.Context, r *DeregisterRequest) error {
	return invoke(ctx, c.cc, "Deregister", r, new(Empty))
}

func (c *Client) Acquire(ctx context.Context, r *AcquireRequest) (*AcquireResponse, error) {
	out := new(AcquireResponse)
	return out, invoke(ctx, c.cc, "Acquire", r, out)
}

func (c *Client) Heartbeat(ctx context.Context, r *HeartbeatRequest) (*HeartbeatResponse, error) {
	out := new(HeartbeatResponse)
	return out, invoke(ctx, c.cc, "Heartbeat", r, out)
}

func (c *Client) Complete(ctx context.Context, r *CompleteRequest) (*CompleteResponse, error) {
	out := new(CompleteResponse)
	return out, invoke(ctx, c.cc, "Complete", r, out)
}

func (c *Client) Fail(ctx context.Context, r *FailRequest) error {
	return invoke(ctx, c.cc, "Fail", r, new(Empty))
}

// Runs calls the coordinator's run service (the REST API's runs
// endpoints): e.g. POST /api/v1/runs, GET /api/v1/runs/ID.
func (c *Client) Runs(ctx context.Context, r *RunRequest) (*RunResponse, error) {
	out := new(RunResponse)
	return out, invoke(ctx, c.cc, "Runs", r, out)
}
