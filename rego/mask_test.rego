package system.log_test

import data.system.log

test_message_text_erased if {
	"/input/pdu/content/body" in log.mask
	"/input/pdu/content/formatted_body" in log.mask
}

test_edit_new_content_erased if {
	"/input/pdu/content/m.new_content" in log.mask
}

test_poll_and_extensible_text_erased if {
	"/input/pdu/content/m.poll.start" in log.mask
	"/input/pdu/content/org.matrix.msc3381.poll.start" in log.mask
	"/input/pdu/content/m.message" in log.mask
	"/input/pdu/content/m.text" in log.mask
	"/input/pdu/content/org.matrix.msc1767.text" in log.mask
}

test_encrypted_payload_erased if {
	"/input/pdu/content/ciphertext" in log.mask
}

test_to_device_messages_erased if {
	"/input/edu/content/messages" in log.mask
}

test_same_mask_for_every_record if {
	request := log.mask with input as {"path": "bordergate/request/decision"}
	pdu := log.mask with input as {"path": "bordergate/pdu/decision", "input": {"pdu": {"content": {"body": "hello"}}}}
	request == pdu
}

test_only_removals if {
	every entry in log.mask {
		is_string(entry)
	}
}

test_pointers_under_input if {
	every pointer in log.mask {
		startswith(pointer, "/input/")
	}
}
