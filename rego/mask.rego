# METADATA
# description: |
#   Decision-log mask policy. Each decision record passes through
#   data.system.log.mask before it is written, with the record as input
#   (input.input is the policy input, input.result the decision). The rule
#   returns JSON pointers of values to erase, listed in the record's erased
#   field, and objects {"op": "upsert", "path": POINTER, "value": VALUE}
#   that replace a value, listed in its masked field. The policy saw the
#   full values: masking changes only the record.
#
#   These rules erase message text, the new text of edits, the text of
#   polls and extensible events, encrypted payloads and to-device message
#   content. A pointer that matches no value is skipped, so the
#   rules need no condition. Rules that read no input, or only fields such
#   as input.path, cost one evaluation for all records; a rule that reads
#   message content is evaluated for every record.
package system.log

# The plain and formatted text of a message event.
mask contains "/input/pdu/content/body"

mask contains "/input/pdu/content/formatted_body"

# The new content of an edit (m.replace), which repeats the message fields
# with the new text.
mask contains "/input/pdu/content/m.new_content"

# The text of polls and of extensible events: the question and answers of
# a poll, and its text fallbacks, under their stable and unstable names.
mask contains "/input/pdu/content/m.poll.start"

mask contains "/input/pdu/content/org.matrix.msc3381.poll.start"

mask contains "/input/pdu/content/m.message"

mask contains "/input/pdu/content/m.text"

mask contains "/input/pdu/content/org.matrix.msc1767.text"

# The encrypted payload of an m.room.encrypted event.
mask contains "/input/pdu/content/ciphertext"

# The content of to-device messages in an m.direct_to_device EDU.
mask contains "/input/edu/content/messages"
