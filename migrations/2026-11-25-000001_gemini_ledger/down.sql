DROP TABLE gemini_requests;
