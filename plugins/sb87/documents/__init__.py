"""Official documents: memos (บันทึกข้อความ) laid out as PDFs, and the request's folder of documents."""
