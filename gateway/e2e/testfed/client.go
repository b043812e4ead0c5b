package testfed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// syncTimeout is the long-poll timeout of one /sync request.
const syncTimeout = 5 * time.Second

// syncFilter keeps /sync responses small: room timelines only, up to 100
// events each.
const syncFilter = `{"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]},` +
	`"room":{"timeline":{"limit":100},"state":{"lazy_load_members":true},"ephemeral":{"not_types":["*"]},` +
	`"account_data":{"not_types":["*"]}}}`

// Client is a user logged in to a homeserver through the client-server API.
// Its methods are safe for concurrent use.
type Client struct {
	// UserID is the full Matrix user ID, e.g. "@alice:hs1.localhost:8481".
	UserID string
	// AccessToken authenticates the client-server API requests.
	AccessToken string
	// DeviceID is the device that the login created.
	DeviceID string

	baseURL string
	http    *http.Client
	txnSeq  atomic.Uint64
}

// Event is a room event as the client-server API returns it.
type Event struct {
	EventID        string          `json:"event_id"`
	Type           string          `json:"type"`
	Sender         string          `json:"sender"`
	RoomID         string          `json:"room_id"`
	StateKey       *string         `json:"state_key,omitempty"`
	OriginServerTS int64           `json:"origin_server_ts"`
	Content        json.RawMessage `json:"content"`
}

// Body returns content.body of a message event, or "" when there is none.
func (e Event) Body() string {
	var content struct {
		Body string `json:"body"`
	}
	_ = json.Unmarshal(e.Content, &content)
	return content.Body
}

// Membership returns content.membership of an m.room.member event, or "".
func (e Event) Membership() string {
	var content struct {
		Membership string `json:"membership"`
	}
	_ = json.Unmarshal(e.Content, &content)
	return content.Membership
}

// MatrixError is an error response of a Matrix API: any status outside
// 200-299.
type MatrixError struct {
	// Status is the HTTP status code.
	Status int
	// ErrCode is the "errcode" field, e.g. "M_FORBIDDEN".
	ErrCode string `json:"errcode"`
	// Message is the "error" field.
	Message string `json:"error"`
	// DecisionID is the "decision_id" field that bordergate adds to its own
	// error responses. Homeservers leave it empty.
	DecisionID string `json:"decision_id"`
	// Body is the raw response body.
	Body []byte `json:"-"`
}

// Error returns the status, the error code and the message.
func (e *MatrixError) Error() string {
	if e.ErrCode == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, bytes.TrimSpace(e.Body))
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.ErrCode, e.Message)
}

// CreateRoomOptions are the fields of a createRoom request.
type CreateRoomOptions struct {
	// Name is the room name. Optional.
	Name string `json:"name,omitempty"`
	// Preset is "private_chat" (invite only, the default here),
	// "trusted_private_chat" or "public_chat".
	Preset string `json:"preset,omitempty"`
	// RoomVersion is the room version. Default: the homeserver's default.
	RoomVersion string `json:"room_version,omitempty"`
	// Invite lists user IDs to invite as part of creating the room.
	Invite []string `json:"invite,omitempty"`
}

// CreateRoom creates a room and returns its room ID.
func (c *Client) CreateRoom(ctx context.Context, opts CreateRoomOptions) (string, error) {
	if opts.Preset == "" {
		opts.Preset = "private_chat"
	}
	var resp struct {
		RoomID string `json:"room_id"`
	}
	if err := c.do(ctx, http.MethodPost, "/_matrix/client/v3/createRoom", nil, opts, &resp); err != nil {
		return "", fmt.Errorf("create room as %s: %w", c.UserID, err)
	}
	return resp.RoomID, nil
}

// Invite invites userID to roomID. For a user on another server, the call
// returns after that server has signed the invite over federation.
func (c *Client) Invite(ctx context.Context, roomID, userID string) error {
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/invite"
	if err := c.do(ctx, http.MethodPost, path, nil, map[string]string{"user_id": userID}, nil); err != nil {
		return fmt.Errorf("invite %s to %s as %s: %w", userID, roomID, c.UserID, err)
	}
	return nil
}

// Join joins roomID. via lists the server names to join through, which a
// room on another server needs.
func (c *Client) Join(ctx context.Context, roomID string, via ...string) error {
	query := url.Values{"server_name": via}
	path := "/_matrix/client/v3/join/" + url.PathEscape(roomID)
	if err := c.do(ctx, http.MethodPost, path, query, struct{}{}, nil); err != nil {
		return fmt.Errorf("join %s as %s: %w", roomID, c.UserID, err)
	}
	return nil
}

// Send sends an event of eventType with content to roomID and returns its
// event ID. Each call uses a new transaction ID.
func (c *Client) Send(ctx context.Context, roomID, eventType string, content any) (string, error) {
	txnID := fmt.Sprintf("testfed-%d-%d", time.Now().UnixNano(), c.txnSeq.Add(1))
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/send/" +
		url.PathEscape(eventType) + "/" + url.PathEscape(txnID)
	var resp struct {
		EventID string `json:"event_id"`
	}
	if err := c.do(ctx, http.MethodPut, path, nil, content, &resp); err != nil {
		return "", fmt.Errorf("send %s to %s as %s: %w", eventType, roomID, c.UserID, err)
	}
	return resp.EventID, nil
}

// SendText sends an m.room.message event with msgtype m.text.
func (c *Client) SendText(ctx context.Context, roomID, body string) (string, error) {
	return c.Send(ctx, roomID, "m.room.message", map[string]string{"msgtype": "m.text", "body": body})
}

// Messages returns up to limit events of roomID, newest first (GET
// /messages with dir=b).
func (c *Client) Messages(ctx context.Context, roomID string, limit int) ([]Event, error) {
	query := url.Values{"dir": {"b"}, "limit": {strconv.Itoa(limit)}}
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/messages"
	var resp struct {
		Chunk []Event `json:"chunk"`
	}
	if err := c.do(ctx, http.MethodGet, path, query, nil, &resp); err != nil {
		return nil, fmt.Errorf("get messages of %s as %s: %w", roomID, c.UserID, err)
	}
	return resp.Chunk, nil
}

// Event returns one event of roomID (GET /rooms/{roomId}/event/{eventId}).
// An event that the server does not have, or does not show to the client,
// returns a *MatrixError with status 404.
func (c *Client) Event(ctx context.Context, roomID, eventID string) (Event, error) {
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/event/" + url.PathEscape(eventID)
	var ev Event
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &ev); err != nil {
		return Event{}, fmt.Errorf("get event %s of %s as %s: %w", eventID, roomID, c.UserID, err)
	}
	return ev, nil
}

// syncResponse is the part of a /sync response that the harness reads.
type syncResponse struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Timeline struct {
				Events []Event `json:"events"`
			} `json:"timeline"`
		} `json:"join"`
		Invite map[string]json.RawMessage `json:"invite"`
	} `json:"rooms"`
}

func (c *Client) sync(ctx context.Context, since string) (*syncResponse, error) {
	query := url.Values{"filter": {syncFilter}, "timeout": {strconv.FormatInt(syncTimeout.Milliseconds(), 10)}}
	if since != "" {
		query.Set("since", since)
	}
	var resp syncResponse
	if err := c.do(ctx, http.MethodGet, "/_matrix/client/v3/sync", query, nil, &resp); err != nil {
		return nil, fmt.Errorf("sync as %s: %w", c.UserID, err)
	}
	return &resp, nil
}

// WaitForEvent returns the first timeline event of roomID for which match
// returns true. It starts with a full sync, so events that arrived before the
// call count too (the last 100 of the room), then long-polls /sync until ctx
// ends. Set a deadline on ctx.
func (c *Client) WaitForEvent(ctx context.Context, roomID string, match func(Event) bool) (Event, error) {
	since := ""
	for {
		resp, err := c.sync(ctx, since)
		if err != nil {
			return Event{}, fmt.Errorf("wait for event in %s: %w", roomID, err)
		}
		for _, ev := range resp.Rooms.Join[roomID].Timeline.Events {
			if match(ev) {
				return ev, nil
			}
		}
		since = resp.NextBatch
	}
}

// WaitForEventID waits until eventID appears in the timeline of roomID.
func (c *Client) WaitForEventID(ctx context.Context, roomID, eventID string) (Event, error) {
	return c.WaitForEvent(ctx, roomID, func(ev Event) bool { return ev.EventID == eventID })
}

// WaitForMembership waits until the timeline of roomID shows userID with the
// given membership ("join", "invite", "leave").
func (c *Client) WaitForMembership(ctx context.Context, roomID, userID, membership string) error {
	_, err := c.WaitForEvent(ctx, roomID, func(ev Event) bool {
		return ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == userID &&
			ev.Membership() == membership
	})
	return err
}

// WaitForInvite waits until the client is invited to roomID.
func (c *Client) WaitForInvite(ctx context.Context, roomID string) error {
	since := ""
	for {
		resp, err := c.sync(ctx, since)
		if err != nil {
			return fmt.Errorf("wait for invite to %s: %w", roomID, err)
		}
		if _, ok := resp.Rooms.Invite[roomID]; ok {
			return nil
		}
		since = resp.NextBatch
	}
}

// do sends a client-server API request with a JSON body (none when body is
// nil) and decodes a JSON response into out (skipped when out is nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	return doJSON(ctx, c.http, method, c.baseURL+path, query, c.AccessToken, body, out)
}

func doJSON(ctx context.Context, client *http.Client, method, rawURL string, query url.Values,
	accessToken string, body, out any) error {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request body: %w", err)
		}
		reader = bytes.NewReader(data)
	}
	if len(query) > 0 {
		rawURL += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, reader)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}

	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("read response of %s %s: %w", method, req.URL.Path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseMatrixError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response of %s %s: %w", method, req.URL.Path, err)
	}
	return nil
}

// parseMatrixError builds a MatrixError from an error response. A body that
// is not a JSON object leaves ErrCode empty.
func parseMatrixError(status int, body []byte) *MatrixError {
	matrixErr := &MatrixError{}
	_ = json.Unmarshal(body, matrixErr)
	matrixErr.Status = status
	matrixErr.Body = body
	return matrixErr
}
