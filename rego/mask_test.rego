package system.log_test

import data.system.log

test_message_text_erased if {
	"/input/pdu/content/body" in log.mask
	"/input/pdu/content/formatted_body" in log.mask
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
