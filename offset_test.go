package psync_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/psyncio/psync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	idA psync.ReplID = "0123456789abcdef0123456789abcdef01234567"
	idB psync.ReplID = "fedcba9876543210fedcba9876543210fedcba98"
	idC psync.ReplID = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

func TestNewReplIDIsFortyLowercaseHexAndUnique(t *testing.T) {
	hex40 := regexp.MustCompile(`^[0-9a-f]{40}$`)
	seen := make(map[psync.ReplID]bool)
	for i := 0; i < 1000; i++ {
		id := psync.NewReplID()
		require.Regexp(t, hex40, string(id))
		assert.True(t, id.Valid())
		assert.NotEqual(t, psync.NoReplID, id)
		assert.False(t, seen[id], "NewReplID repeated %s", id)
		seen[id] = true
	}
}

func TestParseReplID(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     psync.ReplID
		ok       bool
	}{
		{"lower", string(idA), idA, true},
		{"upper folded", strings.ToUpper(string(idA)), idA, true},
		{"mixed folded", "0123456789ABCDEF0123456789abcdef01234567", idA, true},
		{"forty zeros", string(psync.NoReplID), psync.NoReplID, true},
		{"empty", "", "", false},
		{"39 chars", string(idA[:39]), "", false},
		{"41 chars", string(idA) + "0", "", false},
		{"question mark", "?", "", false},
		{"non-hex g", "g123456789abcdef0123456789abcdef01234567", "", false},
		{"space", "0123456789abcdef 123456789abcdef01234567", "", false},
		{"forty non-ASCII bytes", strings.Repeat("\xff", 40), "", false},
		{"twenty two-byte runes", strings.Repeat("é", 20), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := psync.ParseReplID(tc.in)
			if !tc.ok {
				assert.ErrorIs(t, err, psync.ErrBadReplID)
				assert.Empty(t, id)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, id)
			assert.True(t, id.Valid())
		})
	}
	assert.False(t, psync.ReplID(strings.ToUpper(string(idA))).Valid(), "Valid wants the canonical lower case")
	assert.False(t, psync.ReplID("").Valid())
}

func TestParseOffset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"1001", 1001, true},
		{strconv.FormatInt(psync.MaxOffset, 10), psync.MaxOffset, true},
		{strconv.FormatInt(psync.MaxOffset+1, 10), 0, false},
		{"9223372036854775807", 0, false},
		{"9223372036854775808", 0, false},
		{"-1", 0, false},
		{"", 0, false},
		{"abc", 0, false},
		{"1.5", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"0x10", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, err := psync.ParseOffset(tc.in)
			if !tc.ok {
				assert.ErrorIs(t, err, psync.ErrBadOffset)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, n)
		})
	}
}

func TestPositionTextRoundTrip(t *testing.T) {
	for _, p := range []psync.Position{
		{},
		{ID: idA, Offset: 0},
		{ID: idA, Offset: 1001},
		{ID: idB, Offset: psync.MaxOffset},
	} {
		b, err := p.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, p.String(), string(b))
		var q psync.Position
		require.NoError(t, q.UnmarshalText(b), "%s", b)
		assert.Equal(t, p, q)
	}
	assert.Equal(t, "?:-1", psync.Position{}.String())
	assert.Equal(t, string(idA)+":42", psync.Position{ID: idA, Offset: 42}.String())
	assert.True(t, psync.Position{}.IsZero())
	assert.False(t, psync.Position{ID: idA}.IsZero())

	// In a JSON document the Position is one string.
	type state struct{ Pos psync.Position }
	js, err := json.Marshal(state{psync.Position{ID: idA, Offset: 7}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"Pos":"`+string(idA)+`:7"}`, string(js))
	var back state
	require.NoError(t, json.Unmarshal(js, &back))
	assert.Equal(t, psync.Position{ID: idA, Offset: 7}, back.Pos)

	var up psync.Position
	require.NoError(t, up.UnmarshalText([]byte(strings.ToUpper(string(idA))+":5")))
	assert.Equal(t, psync.Position{ID: idA, Offset: 5}, up, "upper-case id folded")
}

func TestPositionUnmarshalTextErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", psync.ErrBadOffset},
		{string(idA), psync.ErrBadOffset},
		{string(idA) + ":", psync.ErrBadOffset},
		{string(idA) + ":-1", psync.ErrBadOffset},
		{string(idA) + ":x", psync.ErrBadOffset},
		{string(idA) + ":5:6", psync.ErrBadOffset},
		{string(idA) + ":" + strconv.FormatInt(psync.MaxOffset+1, 10), psync.ErrBadOffset},
		{"?:5", psync.ErrBadReplID},
		{"?:-2", psync.ErrBadReplID},
		{"abc:5", psync.ErrBadReplID},
		{":5", psync.ErrBadReplID},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p := psync.Position{ID: idC, Offset: 99}
			err := p.UnmarshalText([]byte(tc.in))
			assert.ErrorIs(t, err, tc.want)
			assert.Equal(t, psync.Position{ID: idC, Offset: 99}, p, "unchanged on error")
		})
	}
}
