DROP TABLE device_key_requests;
